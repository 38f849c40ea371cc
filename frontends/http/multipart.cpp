// multipart.cpp — multipart/form-data: boundaries (RFC 2046 §5.1.1) and Content-Disposition parameters.
#include "multipart.hpp"

#include <algorithm>

#include "faas/error.hpp"

namespace faas::http {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorCode::invalid_input, "multipart/form-data: " + message);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A header value "type; key=value; key="quoted value"": the type, then its parameters.
struct HeaderValue {
  std::string_view type;
  std::vector<std::pair<std::string, std::string>> params;

  const std::string* param(std::string_view key) const {
    for (const auto& [k, v] : params) {
      if (iequals(k, key)) return &v;
    }
    return nullptr;
  }
};

HeaderValue parse_header_value(std::string_view text) {
  HeaderValue out;
  std::size_t semicolon = text.find(';');
  out.type = trim(text.substr(0, semicolon));
  std::size_t pos = semicolon == std::string_view::npos ? text.size() : semicolon + 1;
  while (pos < text.size()) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == ';')) ++pos;
    if (pos >= text.size()) break;
    std::size_t equals = text.find('=', pos);
    if (equals == std::string_view::npos) fail("a header parameter has no value");
    std::string key(trim(text.substr(pos, equals - pos)));
    pos = equals + 1;
    std::string value;
    if (pos < text.size() && text[pos] == '"') {
      ++pos;
      bool closed = false;
      while (pos < text.size()) {
        char c = text[pos++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && pos < text.size()) c = text[pos++];
        value.push_back(c);
      }
      if (!closed) fail("unterminated quoted header parameter");
    } else {
      std::size_t end = std::min(text.find(';', pos), text.size());
      value = std::string(trim(text.substr(pos, end - pos)));
      pos = end;
    }
    if (key.empty()) fail("a header parameter has no name");
    out.params.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

// Fills name, filename and content type from a part's header block (lines separated by CRLF).
void parse_part_headers(std::string_view block, FormPart& part) {
  bool has_disposition = false;
  while (!block.empty()) {
    std::size_t end = block.find("\r\n");
    std::string_view line = block.substr(0, end);
    block = end == std::string_view::npos ? std::string_view{} : block.substr(end + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) fail("a part header line has no ':'");
    std::string_view key = trim(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(key, "Content-Disposition")) {
      HeaderValue disposition = parse_header_value(value);
      if (!iequals(disposition.type, "form-data")) fail("a part's Content-Disposition is not form-data");
      const std::string* name = disposition.param("name");
      if (name == nullptr) fail("a part has no name");
      part.name = *name;
      if (const std::string* filename = disposition.param("filename")) part.filename = *filename;
      has_disposition = true;
    } else if (iequals(key, "Content-Type")) {
      part.content_type = std::string(value);
    }
  }
  if (!has_disposition) fail("a part has no Content-Disposition header");
}

}  // namespace

std::string multipart_boundary(std::string_view content_type) {
  HeaderValue value = parse_header_value(content_type);
  if (!iequals(value.type, "multipart/form-data")) fail("the Content-Type is not multipart/form-data");
  const std::string* boundary = value.param("boundary");
  if (boundary == nullptr || boundary->empty()) fail("the Content-Type has no boundary");
  if (boundary->size() > 70) fail("the boundary is longer than 70 characters");
  return *boundary;
}

std::vector<FormPart> parse_multipart(std::string_view body, std::string_view boundary,
                                      const MultipartLimits& limits) {
  if (boundary.empty()) fail("empty boundary");
  const std::string delimiter = "\r\n--" + std::string(boundary);

  // The first delimiter may open the body without a preceding CRLF; anything before it is a preamble.
  std::size_t pos = 0;
  if (body.substr(0, delimiter.size() - 2) == std::string_view(delimiter).substr(2)) {
    pos = delimiter.size() - 2;
  } else {
    std::size_t found = body.find(delimiter);
    if (found == std::string_view::npos) fail("no boundary found; the body is empty or truncated");
    pos = found + delimiter.size();
  }

  std::vector<FormPart> parts;
  for (;;) {
    // After a delimiter: "--" closes the body; otherwise optional padding, then CRLF and the part's headers.
    if (body.substr(pos, 2) == "--") return parts;
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (pos >= body.size()) fail("truncated after a boundary");
    if (body.substr(pos, 2) != "\r\n") fail("a boundary line is not followed by CRLF");
    pos += 2;
    if (parts.size() == limits.max_parts) fail("more than " + std::to_string(limits.max_parts) + " parts");

    FormPart part;
    std::size_t headers_end;
    if (body.substr(pos, 2) == "\r\n") {
      headers_end = pos;  // no header lines at all
    } else {
      headers_end = body.find("\r\n\r\n", pos);
      if (headers_end == std::string_view::npos) fail("truncated inside a part's headers");
      headers_end += 2;  // keep the last line's CRLF out of the block, past it is the blank line
    }
    if (headers_end - pos > limits.max_header_bytes) fail("a part's headers are too large");
    parse_part_headers(body.substr(pos, headers_end - pos == 0 ? 0 : headers_end - pos - 2), part);
    pos = headers_end + 2;

    std::size_t data_end = body.find(delimiter, pos);
    if (data_end == std::string_view::npos) fail("truncated inside part '" + part.name + "'");
    part.data = body.substr(pos, data_end - pos);
    parts.push_back(std::move(part));
    pos = data_end + delimiter.size();
  }
}

const FormPart* find_part(const std::vector<FormPart>& parts, std::string_view name) {
  for (const auto& part : parts) {
    if (part.name == name) return &part;
  }
  return nullptr;
}

}  // namespace faas::http
