// The text forms PostgreSQL's parameters take, built without libpq: a text[] array literal and COPY's text
// format, plus what PostgreSQL's text needs (UTF-8 without NUL) and a URI safe to print. Pure functions, unit
// tested and fuzzed (tests/fuzz/postgres_text_fuzzer.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace faas::store::pg {

// Builds the text form of a text[] parameter: {"a","b\"c"}.
class ArrayText {
 public:
  void add(std::string_view element);
  std::size_t size() const { return count_; }
  // The finished literal ("{}" when empty); the builder may be reused after clear().
  const std::string& finish();
  void clear();

 private:
  std::string text_ = "{";
  std::size_t count_ = 0;
  bool finished_ = false;
};

// Builds COPY's text format: columns separated by tabs, rows by newlines, with \\, \n, \r and \t escaped.
class CopyText {
 public:
  void field(std::string_view value);  // the next column of the current row
  void end_row();
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  bool row_started_ = false;
};

// True for "postgresql://..." and "postgres://..." (libpq's URI forms).
bool is_uri(std::string_view store);
// The URI with its password replaced by "***", for messages and logs.
std::string redact(std::string_view uri);

// Replaces every byte sequence that is not UTF-8 with U+FFFD (PostgreSQL's text holds UTF-8 only). Returns
// whether anything was replaced.
bool make_valid_utf8(std::string& text);
bool is_valid_utf8(std::string_view text);

}  // namespace faas::store::pg
