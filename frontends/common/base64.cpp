// base64.cpp — validation around Beast's base64 decoder, which on its own stops silently at the first bad byte.
#include "base64.hpp"

#include <boost/beast/core/detail/base64.hpp>

namespace faas::frontend {

std::optional<std::string> decode_base64(std::string_view text) {
  namespace base64 = boost::beast::detail::base64;
  std::string compact;
  compact.reserve(text.size());
  for (char c : text) {
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') compact.push_back(c);
  }
  if (compact.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  while (padding < 2 && padding < compact.size() && compact[compact.size() - 1 - padding] == '=') ++padding;
  std::size_t data = compact.size() - padding;

  std::string out(base64::decoded_size(compact.size()), '\0');
  auto [written, read] = base64::decode(out.data(), compact.data(), data);
  if (read != data) return std::nullopt;  // a byte outside the alphabet, or '=' inside the data
  out.resize(written);
  return out;
}

}  // namespace faas::frontend
