#include <gtest/gtest.h>

#include "faas/error.hpp"
#include "util/names.hpp"

namespace faas {
namespace {

TEST(FunctionNames, AcceptsNamesThatAreOneSafePathComponent) {
  for (const auto& name : {std::string("calc"), std::string("a"), std::string("A1"), std::string("my-func_2.v1"),
                           std::string("0start"), std::string(64, 'x')}) {
    EXPECT_TRUE(is_valid_function_name(name)) << name;
  }
}

TEST(FunctionNames, RefusesAnythingThatCouldLeaveTheDataDir) {
  for (const auto& name : {std::string(""), std::string("../x"), std::string(".."), std::string("a/b"),
                                 std::string(65, 'x'), std::string("a..b"), std::string(".hidden"),
                                 std::string("-dash"), std::string("_under"), std::string("sp ace"),
                                 std::string("nul\0x", 5), std::string("é"), std::string("a\\b")}) {
    EXPECT_FALSE(is_valid_function_name(name)) << name;
    try {
      check_function_name(name);
      ADD_FAILURE() << "accepted " << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_name);
      EXPECT_NE(std::string(e.what()).find("invalid function name"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace faas
