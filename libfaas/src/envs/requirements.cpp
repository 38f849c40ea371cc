#include "envs/requirements.hpp"

#include <string>

#include "faas/error.hpp"

namespace faas::envs {

namespace {

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool is_space(char c) { return c == ' ' || c == '\t'; }

// A small cursor over one line.
struct Line {
  std::string_view text;
  std::size_t at = 0;

  bool done() const { return at >= text.size(); }
  char peek() const { return done() ? '\0' : text[at]; }
  void skip_spaces() {
    while (!done() && is_space(text[at])) ++at;
  }
  bool take(char c) {
    if (peek() != c) return false;
    ++at;
    return true;
  }
  bool take(std::string_view word) {
    if (text.substr(at, word.size()) != word) return false;
    at += word.size();
    return true;
  }
  // A PEP 508 name: letters and digits, with '.', '_' and '-' inside.
  bool name() {
    std::size_t start = at;
    if (!is_alnum(peek())) return false;
    while (!done() && (is_alnum(text[at]) || text[at] == '.' || text[at] == '_' || text[at] == '-')) ++at;
    return is_alnum(text[at - 1]) || (at = start, false);
  }
  bool version() {
    std::size_t start = at;
    while (!done() && (is_alnum(text[at]) || std::string_view(".*+!_-").find(text[at]) != std::string_view::npos)) ++at;
    return at > start;
  }
  bool comparison() {
    for (std::string_view op : {"===", "==", "!=", "<=", ">=", "~=", "<", ">"}) {
      if (take(op)) return true;
    }
    return false;
  }
  // --hash=ALGORITHM:HEX, as pip's hash-checking mode writes them.
  bool hash() {
    if (!take("--hash=")) return false;
    std::size_t start = at;
    while (!done() && is_alnum(text[at])) ++at;
    if (at == start || !take(':')) return false;
    start = at;
    while (!done() && std::string_view("0123456789abcdefABCDEF").find(text[at]) != std::string_view::npos) ++at;
    return at > start;
  }
};

// Empty when the line is a requirement specifier; otherwise why not.
std::string problem_with(std::string_view text) {
  Line line{text};
  line.skip_spaces();
  if (line.peek() == '-' && !line.text.substr(line.at).starts_with("--hash=")) {
    return "pip options are not accepted here (the server's own pip settings apply)";
  }
  if (text.find("://") != std::string_view::npos || text.find('@') != std::string_view::npos) {
    return "URLs and direct references are not accepted; name a package and its versions";
  }
  auto first = text.find_first_not_of(" \t");
  auto backslash = text.find('\\');
  bool continued = backslash != std::string_view::npos && backslash == text.find_last_not_of(" \t");
  if (text[first] == '.' || text[first] == '/' || text[first] == '~' || text.find('/') != std::string_view::npos ||
      (backslash != std::string_view::npos && !continued)) {
    return "local paths are not accepted; name a package and its versions";
  }
  const std::string not_a_specifier = "not a requirement specifier (such as 'requests==2.31.0' or 'numpy>=1.26')";
  if (line.hash()) {  // a continuation line of hashes
    line.skip_spaces();
  } else {
    if (!line.name()) return not_a_specifier;
    line.skip_spaces();
    if (line.take('[')) {
      do {
        line.skip_spaces();
        if (!line.name()) return not_a_specifier;
        line.skip_spaces();
      } while (line.take(','));
      if (!line.take(']')) return not_a_specifier;
      line.skip_spaces();
    }
    bool parenthesised = line.take('(');
    line.skip_spaces();
    if (line.comparison()) {
      for (;;) {
        line.skip_spaces();
        if (!line.version()) return not_a_specifier;
        line.skip_spaces();
        if (!line.take(',')) break;
        line.skip_spaces();
        if (!line.comparison()) return not_a_specifier;
      }
    }
    if (parenthesised && !line.take(')')) return not_a_specifier;
    line.skip_spaces();
    if (line.take(';')) {  // an environment marker: names, operators and quoted values
      while (!line.done() && !line.text.substr(line.at).starts_with("--hash=") && line.peek() != '\\') {
        char c = line.peek();
        if (!is_alnum(c) && std::string_view(" \t._-<>=!~'\"()").find(c) == std::string_view::npos) {
          return not_a_specifier;
        }
        ++line.at;
      }
    }
  }
  while (line.hash()) line.skip_spaces();
  line.take('\\');  // continued on the next line
  line.skip_spaces();
  return line.done() ? std::string() : not_a_specifier;
}

}  // namespace

void check_requirements(std::string_view requirements) {
  std::size_t number = 0;
  std::size_t start = 0;
  while (start < requirements.size()) {
    auto end = requirements.find('\n', start);
    if (end == std::string_view::npos) end = requirements.size();
    auto text = requirements.substr(start, end - start);
    start = end + 1;
    ++number;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    // pip's comments: a line starting with '#', or ' #' anywhere.
    for (std::size_t hash = text.find('#'); hash != std::string_view::npos; hash = text.find('#', hash + 1)) {
      if (hash == 0 || is_space(text[hash - 1])) {
        text = text.substr(0, hash);
        break;
      }
    }
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto why = problem_with(text);
    if (why.empty()) continue;
    std::string shown(text.substr(0, 120));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    throw Error(ErrorCode::invalid_input, "requirements.txt line " + std::to_string(number) + " ('" + shown +
                                              (text.size() > 120 ? "..." : "") + "'): " + why);
  }
}

}  // namespace faas::envs
