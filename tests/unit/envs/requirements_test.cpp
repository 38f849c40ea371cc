// What requirements.txt may say: specifiers only; everything that would steer pip elsewhere is refused by line.
#include <gtest/gtest.h>

#include <string>

#include "envs/requirements.hpp"
#include "faas/error.hpp"

namespace faas::envs {
namespace {

std::string refusal(const std::string& requirements) {
  try {
    check_requirements(requirements);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    return e.what();
  }
  return {};
}

TEST(Requirements, AcceptsSpecifiersExtrasMarkersAndHashes) {
  for (const char* good : {
           "requests", "requests==2.31.0", "numpy>=1.26,<2", "numpy >= 1.26 , < 2", "Django~=4.2.0",
           "pkg===1.0", "pkg!=1.*", "zope.interface", "ruamel.yaml.clib>=0.2", "a-b_c.d",
           "requests[security,socks]==2.31", "pkg (>=1.0)", "pkg; python_version < \"3.12\"",
           "pkg==1.0 ; sys_platform == 'linux' and python_version >= '3.8'",
           "pkg==1.0 --hash=sha256:0123456789abcdef", "pkg==1.0 \\",
           "    --hash=sha256:abcdef0123456789 \\", "    --hash=sha256:ABCDEF",
           "# a comment", "   ", "pkg==1.0  # trailing comment", "pkg==1.0\r"}) {
    EXPECT_EQ(refusal(good), "") << good;
  }
  EXPECT_EQ(refusal("requests==2.31.0\n\n# pinned\nnumpy>=1.26\n"), "");
}

TEST(Requirements, RefusesOptionsPathsUrlsAndEditablesNamingTheLine) {
  struct Case {
    const char* line;
    const char* why;
  };
  for (const Case& c : {
           Case{"-r /etc/shadow", "pip options"}, Case{"--requirement other.txt", "pip options"},
           Case{"-c constraints.txt", "pip options"}, Case{"-e .", "pip options"},
           Case{"--editable git+https://x/y", "pip options"}, Case{"-i https://evil.example/simple", "pip options"},
           Case{"--index-url https://evil.example/simple", "pip options"},
           Case{"--extra-index-url https://evil.example", "pip options"}, Case{"-f /tmp/wheels", "pip options"},
           Case{"--find-links=/tmp", "pip options"}, Case{"--trusted-host evil.example", "pip options"},
           Case{"./local-folder", "local paths"}, Case{"/abs/path/pkg.whl", "local paths"},
           Case{"~/pkg", "local paths"}, Case{"pkg/sub", "local paths"}, Case{"..\\pkg", "local paths"},
           Case{"https://evil.example/pkg.tar.gz", "URLs"}, Case{"pkg @ https://evil.example/pkg.whl", "URLs"},
           Case{"pkg @ file:///etc/passwd", "URLs"}, Case{"git+https://github.com/x/y", "URLs"},
           Case{"pkg==1.0 extra words", "not a requirement"}, Case{"pkg==", "not a requirement"},
           Case{"pkg[", "not a requirement"}, Case{"pkg; `id`", "not a requirement"},
           Case{"pkg==1.0 --no-deps", "not a requirement"}, Case{"=pkg", "not a requirement"},
           Case{"pkg$==1", "not a requirement"}}) {
    auto why = refusal(std::string("requests\n") + c.line + "\n");
    EXPECT_NE(why.find("line 2"), std::string::npos) << c.line << ": " << why;
    EXPECT_NE(why.find(c.why), std::string::npos) << c.line << ": " << why;
  }
}

TEST(Requirements, ShowsOnlyAPrintableBoundedPieceOfTheLine) {
  auto why = refusal("-r " + std::string(500, 'x') + "\x01\x1b[2J");
  EXPECT_LT(why.size(), 300u);
  EXPECT_EQ(why.find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace faas::envs
