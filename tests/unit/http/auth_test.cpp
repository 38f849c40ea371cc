// Basic credentials, strict base64 and the generated password file.
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "auth.hpp"
#include "base64.hpp"
#include "test_support.hpp"

namespace faas {
namespace {

TEST(Base64, DecodesStandardTextAndSkipsLineBreaks) {
  EXPECT_EQ(frontend::decode_base64("aGVsbG8="), "hello");
  EXPECT_EQ(frontend::decode_base64("aGVs\nbG8h\r\n"), "hell" "o!");
  EXPECT_EQ(frontend::decode_base64(""), "");
  EXPECT_EQ(frontend::decode_base64("YQ=="), "a");
}

TEST(Base64, RefusesWhatPythonRefusesAndMore) {
  EXPECT_FALSE(frontend::decode_base64("aGVsbG8"));     // missing padding
  EXPECT_FALSE(frontend::decode_base64("aGV!bG8="));    // outside the alphabet
  EXPECT_FALSE(frontend::decode_base64("YQ=a"));        // '=' inside the data
  EXPECT_FALSE(frontend::decode_base64("Y==="));        // too much padding
  EXPECT_FALSE(frontend::decode_base64("not base64!"));
}

TEST(BasicAuth, AcceptsOnlyTheExactCredentials) {
  frontend::BasicAuth auth("admin", "pa:ss");
  EXPECT_TRUE(auth.check("Basic YWRtaW46cGE6c3M="));  // admin:pa:ss
  EXPECT_TRUE(auth.check("basic YWRtaW46cGE6c3M="));
  EXPECT_FALSE(auth.check("Basic YWRtaW46cGE6c3M"));
  EXPECT_FALSE(auth.check("Basic YWRtaW46cGE6c3Q="));  // admin:pa:st
  EXPECT_FALSE(auth.check("Bearer YWRtaW46cGE6c3M="));
  EXPECT_FALSE(auth.check(""));
  EXPECT_FALSE(auth.check("Basic "));
  EXPECT_FALSE(auth.check("Basic " + std::string(5000, 'A')));
}

TEST(PasswordFile, CreatedOnceWithMode0600) {
  testing::TempDir dir;
  bool created = false;
  auto first = frontend::load_or_create_password(dir.path(), created);
  EXPECT_TRUE(created);
  EXPECT_GE(first.size(), 32u);
  struct stat info{};
  ASSERT_EQ(::stat((dir.path() / "http-password").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  auto second = frontend::load_or_create_password(dir.path(), created);
  EXPECT_FALSE(created);
  EXPECT_EQ(first, second);
  auto entries = std::distance(std::filesystem::directory_iterator(dir.path()), {});
  EXPECT_EQ(entries, 1);  // no temporary file left behind
}

}  // namespace
}  // namespace faas
