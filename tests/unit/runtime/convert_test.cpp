#include <gtest/gtest.h>

#include "faas/error.hpp"
#include "runtime/convert.hpp"
#include "runtime/python_host.hpp"

#include <pybind11/eval.h>

namespace py = pybind11;

namespace faas::runtime {
namespace {

class Convert : public ::testing::Test {
 protected:
  void SetUp() override { PythonHost::get("/usr/bin/python3"); }

  // JSON text -> Python -> JSON text.
  static std::string round_trip(std::string_view text) {
    GilLock gil;
    py::object value = json_to_python(text);
    std::string out, error;
    EXPECT_TRUE(python_to_json(value.ptr(), out, error)) << error;
    return out;
  }

  // Evaluates a Python expression and converts it; returns the text or "error: <message>".
  static std::string from_python(const char* expression) {
    GilLock gil;
    py::object value = py::eval(expression);
    std::string out, error;
    if (!python_to_json(value.ptr(), out, error)) return "error: " + error;
    return out;
  }
};

TEST_F(Convert, RoundTripsEveryJsonType) {
  EXPECT_EQ(round_trip(R"([1,-2,2.5,"s",null,true,false,{"a":[{}],"b":{"c":[]}}])"),
            R"([1,-2,2.5,"s",null,true,false,{"a":[{}],"b":{"c":[]}}])");
  EXPECT_EQ(round_trip("0.1"), "0.1");
  EXPECT_EQ(round_trip("1e100"), "1e+100");
  EXPECT_EQ(round_trip("3.0"), "3.0");
  EXPECT_EQ(round_trip(R"("é😀\u0000\n\"\\\t")"), R"("é😀\u0000\n\"\\\t")");
}

TEST_F(Convert, KeepsBigIntegersExact) {
  for (const char* number : {"123456789012345678901234567890", "-123456789012345678901234567890",
                             "9223372036854775807", "-9223372036854775808", "18446744073709551615",
                             "18446744073709551616"}) {
    EXPECT_EQ(round_trip(number), number);
  }
  EXPECT_EQ(from_python("2**200"), "1606938044258990275541962092341162602522202993782792835301376");
  EXPECT_EQ(from_python("-(2**70)"), "-1180591620717411303424");
}

TEST_F(Convert, BuildsTheExpectedPythonTypes) {
  GilLock gil;
  py::object value = json_to_python(R"({"i": 1, "big": 99999999999999999999999, "f": 1.5, "l": [], "n": null})");
  ASSERT_TRUE(py::isinstance<py::dict>(value));
  EXPECT_TRUE(py::isinstance<py::int_>(value["i"]));
  EXPECT_EQ(py::str(value["big"]).cast<std::string>(), "99999999999999999999999");
  EXPECT_TRUE(py::isinstance<py::float_>(value["f"]));
  EXPECT_TRUE(py::isinstance<py::list>(value["l"]));
  EXPECT_TRUE(value["n"].is_none());
}

TEST_F(Convert, WritesWhatJsonDumpsWouldAccept) {
  EXPECT_EQ(from_python("(1, (2, 3))"), "[1,[2,3]]");
  EXPECT_EQ(from_python("{1: 'a', 2.5: 'b', False: 'c', None: 'd'}"), R"({"1":"a","2.5":"b","false":"c","null":"d"})");
  EXPECT_EQ(from_python("'tab\\tand\\x01'"), R"("tab\tand\u0001")");
}

TEST_F(Convert, RefusesResultsJsonCannotHoldAndSaysWhichType) {
  EXPECT_EQ(from_python("{1, 2}"), "error: result is not JSON-serializable: object of type 'set'");
  EXPECT_EQ(from_python("b'x'"), "error: result is not JSON-serializable: object of type 'bytes'");
  EXPECT_EQ(from_python("float('nan')"), "error: result is not JSON-serializable: float nan");
  EXPECT_EQ(from_python("[float('-inf')]"), "error: result is not JSON-serializable: float -inf");
  EXPECT_EQ(from_python("{(1, 2): 3}"),
            "error: result is not JSON-serializable: dict keys must be str, int, float, bool or None, not 'tuple'");
  EXPECT_NE(from_python("object()").find("object of type 'object'"), std::string::npos);
  EXPECT_NE(from_python("'\\ud800'").find("not valid Unicode"), std::string::npos);
}

TEST_F(Convert, RefusesSelfReferenceInsteadOfLooping) {
  GilLock gil;
  py::list cycle;
  cycle.append(cycle);
  std::string out, error;
  EXPECT_FALSE(python_to_json(cycle.ptr(), out, error));
  EXPECT_NE(error.find("nested too deeply"), std::string::npos);
}

TEST_F(Convert, RefusesInvalidJsonAsInvalidInput) {
  GilLock gil;
  for (const char* text : {"", "[1,", "{\"a\"}", "nul", "[1] 2"}) {
    try {
      json_to_python(text);
      ADD_FAILURE() << "accepted " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    }
  }
}

}  // namespace
}  // namespace faas::runtime
