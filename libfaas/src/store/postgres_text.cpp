#include "store/postgres_text.hpp"

#include <boost/locale/utf.hpp>

namespace faas::store::pg {

void ArrayText::add(std::string_view element) {
  if (finished_) {
    text_.pop_back();  // reopen: more elements after finish()
    finished_ = false;
  }
  if (count_++ != 0) text_.push_back(',');
  text_.push_back('"');
  std::size_t run = 0;
  for (std::size_t i = 0; i < element.size(); ++i) {
    if (element[i] != '"' && element[i] != '\\') continue;
    text_.append(element.data() + run, i - run);
    text_.push_back('\\');
    run = i;
  }
  text_.append(element.data() + run, element.size() - run);
  text_.push_back('"');
}

const std::string& ArrayText::finish() {
  if (!finished_) text_.push_back('}');
  finished_ = true;
  return text_;
}

void ArrayText::clear() {
  text_ = "{";
  count_ = 0;
  finished_ = false;
}

void CopyText::field(std::string_view value) {
  if (row_started_) text_.push_back('\t');
  row_started_ = true;
  std::size_t run = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c != '\\' && c != '\n' && c != '\r' && c != '\t') continue;
    text_.append(value.data() + run, i - run);
    text_ += c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : "\\t";
    run = i + 1;
  }
  text_.append(value.data() + run, value.size() - run);
}

void CopyText::end_row() {
  text_.push_back('\n');
  row_started_ = false;
}

bool is_uri(std::string_view store) {
  return store.starts_with("postgresql://") || store.starts_with("postgres://");
}

std::string redact(std::string_view uri) {
  // postgresql://user:password@host...: the password is between the first ':' after the scheme and the '@'.
  auto scheme = uri.find("://");
  if (scheme == std::string_view::npos) return std::string(uri);
  auto authority_end = uri.find_first_of("/?", scheme + 3);
  auto at = uri.rfind('@', authority_end);
  if (at == std::string_view::npos || at < scheme + 3) return std::string(uri);
  auto colon = uri.find(':', scheme + 3);
  if (colon == std::string_view::npos || colon > at) return std::string(uri);
  return std::string(uri.substr(0, colon + 1)) + "***" + std::string(uri.substr(at));
}

bool is_valid_utf8(std::string_view text) {
  using traits = boost::locale::utf::utf_traits<char>;
  for (auto it = text.begin(); it != text.end();) {
    auto code = traits::decode(it, text.end());
    if (code == boost::locale::utf::illegal || code == boost::locale::utf::incomplete || code == 0) return false;
  }
  return true;
}

bool make_valid_utf8(std::string& text) {
  if (is_valid_utf8(text)) return false;
  using traits = boost::locale::utf::utf_traits<char>;
  std::string out;
  out.reserve(text.size() + 16);
  for (auto it = text.cbegin(); it != text.cend();) {
    auto start = it;
    auto code = traits::decode(it, text.cend());
    if (code == boost::locale::utf::illegal || code == boost::locale::utf::incomplete || code == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      it = start + 1;         // resynchronise on the next byte
    } else {
      out.append(start, it);
    }
  }
  text = std::move(out);
  return true;
}

}  // namespace faas::store::pg
