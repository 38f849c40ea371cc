// auth.hpp — the admin's credentials, shared by every frontend: HTTP Basic authentication (RFC 7617; gRPC sends
// the same header as metadata) and the generated password of a fresh data dir.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

namespace faas::frontend {

class BasicAuth {
 public:
  BasicAuth(std::string_view user, std::string_view password);

  // True when `authorization` (the header's value) carries exactly this user and password. Compares digests
  // in constant time, so neither the password nor its length leaks through timing.
  bool check(std::string_view authorization) const;

 private:
  std::array<unsigned char, 32> expected_{};  // SHA-256 of "user:password"
};

// The password kept in `<data_dir>/http-password`, creating it (mode 0600, 24 random bytes as base64url) when
// missing; `created` tells which. Throws std::runtime_error when the file cannot be read or written.
std::string load_or_create_password(const std::filesystem::path& data_dir, bool& created);

// The admin's password for `program`: FAAS_HTTP_PASSWORD when set, else the data dir's file (created when
// missing), saying on stderr where it is. Never a built-in default. Throws std::runtime_error as above.
std::string admin_password(const char* program, const std::string& user, const std::filesystem::path& data_dir);

}  // namespace faas::frontend
