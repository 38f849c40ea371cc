// libFuzzer target for the text forms of PostgreSQL parameters (libfaas/src/store/postgres_text.cpp), which carry
// every record, inbox entry and key to a cluster's database. The input is split into elements at 0xFE bytes; each
// is made valid UTF-8 (which must then check valid, and stay the same when already valid), then written as a
// text[] literal and as COPY rows, which a reader following PostgreSQL's rules must read back unchanged. Anything
// else, or a crash or sanitizer report, is a finding.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "store/postgres_text.hpp"

namespace pg = faas::store::pg;

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

// PostgreSQL's array input for quoted elements: {"...","..."} with \x standing for x.
std::vector<std::string> read_array(const std::string& text) {
  std::vector<std::string> out;
  check(text.size() >= 2 && text.front() == '{' && text.back() == '}');
  std::size_t i = 1;
  while (i < text.size() - 1) {
    check(text[i] == '"');
    std::string element;
    for (++i; text[i] != '"'; ++i) {
      if (text[i] == '\\') ++i;
      element.push_back(text[i]);
    }
    out.push_back(std::move(element));
    ++i;
    if (text[i] == ',') ++i;
  }
  return out;
}

// COPY's text format, one column per row here: \\, \n, \r, \t stand for themselves.
std::vector<std::string> read_copy(const std::string& text) {
  std::vector<std::string> out;
  std::string field;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      out.push_back(std::move(field));
      field.clear();
    } else if (c == '\\') {
      char next = text[++i];
      field.push_back(next == 'n' ? '\n' : next == 'r' ? '\r' : next == 't' ? '\t' : next);
    } else {
      check(c != '\t' && c != '\r');  // raw separators only between fields
      field.push_back(c);
    }
  }
  check(field.empty());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> elements(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0xFE) {
      elements.emplace_back();
    } else {
      elements.back().push_back(static_cast<char>(data[i]));
    }
  }
  pg::ArrayText array;
  pg::CopyText rows;
  for (auto& element : elements) {
    std::string before = element;
    bool was_valid = pg::is_valid_utf8(before);
    bool changed = pg::make_valid_utf8(element);
    check(changed != was_valid);
    check(pg::is_valid_utf8(element));
    if (was_valid) check(element == before);
    array.add(element);
    rows.field(element);
    rows.end_row();
  }
  check(read_array(array.finish()) == elements);
  check(read_copy(rows.text()) == elements);
  return 0;
}
