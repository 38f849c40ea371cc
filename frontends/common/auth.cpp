// auth.cpp — Basic credentials checked against a digest; the generated password file.
#include "auth.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "base64.hpp"

namespace faas::frontend {
namespace {

std::array<unsigned char, 32> digest(std::string_view text) {
  std::array<unsigned char, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

bool starts_with_basic(std::string_view header) {
  if (header.size() < 6) return false;
  for (std::size_t i = 0; i < 5; ++i) {
    if ((header[i] | 0x20) != "basic"[i]) return false;
  }
  return header[5] == ' ';
}

std::string random_password() {
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no random bytes for a password");
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (std::size_t i = 0; i < sizeof bytes; i += 3) {
    unsigned value = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(alphabet[(value >> shift) & 63]);
  }
  return out;
}

}  // namespace

BasicAuth::BasicAuth(std::string_view user, std::string_view password)
    : expected_(digest(std::string(user) + ":" + std::string(password))) {}

bool BasicAuth::check(std::string_view authorization) const {
  if (!starts_with_basic(authorization)) return false;
  authorization.remove_prefix(6);
  if (authorization.size() > 1024) return false;
  auto credentials = frontend::decode_base64(authorization);
  if (!credentials) return false;
  auto given = digest(*credentials);
  return CRYPTO_memcmp(given.data(), expected_.data(), given.size()) == 0;
}

std::string load_or_create_password(const std::filesystem::path& data_dir, bool& created) {
  std::filesystem::create_directories(data_dir);
  const auto path = data_dir / "http-password";
  created = false;
  // Written aside, then linked into place: link() fails if another server got there first, and a reader never
  // sees a half-written file.
  const auto temp = data_dir / (".http-password." + std::to_string(::getpid()));
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + temp.string() + ": " + std::strerror(errno));
  std::string password = random_password();
  std::string line = password + "\n";
  bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  int linked = written ? ::link(temp.c_str(), path.c_str()) : -1;
  int link_errno = errno;
  ::unlink(temp.c_str());
  if (!written) throw std::runtime_error("cannot write " + temp.string());
  if (linked == 0) {
    created = true;
    return password;
  }
  errno = link_errno;
  if (errno != EEXIST) throw std::runtime_error("cannot create " + path.string() + ": " + std::strerror(errno));
  std::ifstream in(path);
  if (!std::getline(in, password) || password.empty()) {
    throw std::runtime_error(path.string() + " is empty or unreadable; delete it to generate a new password");
  }
  return password;
}

std::string admin_password(const char* program, const std::string& user, const std::filesystem::path& data_dir) {
  if (const char* password = std::getenv("FAAS_HTTP_PASSWORD"); password != nullptr && *password != '\0') {
    return password;
  }
  bool created = false;
  auto password = load_or_create_password(data_dir, created);
  std::fprintf(stderr, created ? "%s: generated a password for user '%s' in %s\n"
                               : "%s: the password for user '%s' is in %s\n",
               program, user.c_str(), (data_dir / "http-password").c_str());
  return password;
}

}  // namespace faas::frontend
