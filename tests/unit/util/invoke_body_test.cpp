#include <gtest/gtest.h>

#include "faas/error.hpp"
#include "faas/invocation.hpp"
#include "util/ids.hpp"

namespace faas {
namespace {

InvokeRequest parse(std::string_view body) {
  InvokeRequest request;
  parse_invoke_body(body, request);
  return request;
}

ErrorCode parse_error(std::string_view body) {
  try {
    parse(body);
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "accepted " << body;
  return ErrorCode::internal;
}

TEST(InvokeBody, CopiesArgsKwargsAndRequestIdAsCompactText) {
  auto request = parse(R"( { "args" : [ 10, 20.5, "x\"y", null, true, {"k": [1, {}]} ],
                             "kwargs": {"a": [], "b": {"c": false}}, "request_id": "r-1", "other": [1, {"x": 2}] } )");
  EXPECT_EQ(request.args, R"([10,20.5,"x\"y",null,true,{"k":[1,{}]}])");
  EXPECT_EQ(request.kwargs, R"({"a":[],"b":{"c":false}})");
  EXPECT_EQ(request.request_id, "r-1");
}

TEST(InvokeBody, KeepsIntegersOfAnySizeExactly) {
  auto request = parse(R"({"args": [123456789012345678901234567890, -98765432109876543210, 18446744073709551615,
                                    -9223372036854775808, 1e300, 1.5E-3]})");
  EXPECT_EQ(request.args,
            "[123456789012345678901234567890,-98765432109876543210,18446744073709551615,-9223372036854775808,"
            "1e300,1.5E-3]");
}

TEST(InvokeBody, EmptyBodyOrMissingArgsMeansNoArguments) {
  EXPECT_EQ(parse("").args, "[]");
  EXPECT_EQ(parse("  ").args, "[]");
  EXPECT_EQ(parse("{}").args, "[]");
  EXPECT_EQ(parse(R"({"kwargs": null})").kwargs, "");
}

TEST(InvokeBody, RefusesWrongShapesWithClearMessages) {
  for (const char* body : {"[1,2]", "\"s\"", "3", R"({"args": 5})", R"({"args": {"a": 1}})", R"({"kwargs": [1]})",
                           R"({"request_id": 7})", R"({"args": [1,)", "{bad json}", R"({"args": [1]} trailing)"}) {
    EXPECT_EQ(parse_error(body), ErrorCode::invalid_input) << body;
  }
  try {
    parse(R"({"args": 5})");
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "\"args\" must be an array, not a number");
  }
}

TEST(InvokeBody, RefusesNestingBeyondTheLimit) {
  std::string deep = R"({"args": )" + std::string(300, '[') + std::string(300, ']') + "}";
  EXPECT_EQ(parse_error(deep), ErrorCode::invalid_input);
}

TEST(InvocationRecord, SerialisesInTheContractShape) {
  Invocation record;
  record.id = "id-1";
  record.function = "calc";
  record.request_id = "req";
  record.args = "[10,20]";
  record.result = "30";
  record.duration_ms = 0.0412345678;
  record.output = "hi\n";
  auto json = record.to_json();
  EXPECT_NE(json.find(R"("args":[10,20],"result":30,"status":"success")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("duration_ms":0.041235)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("stdout":"hi\n")"), std::string::npos) << json;
  EXPECT_EQ(json.find("error"), std::string::npos);

  record.status = InvocationStatus::error;
  record.error = "division by zero";
  record.error_type = "ZeroDivisionError";
  record.traceback = "Traceback...";
  json = record.to_json();
  EXPECT_EQ(json.find("\"result\""), std::string::npos);
  EXPECT_NE(json.find(R"("status":"error","error":"division by zero","error_type":"ZeroDivisionError")"),
            std::string::npos);
}

TEST(InvocationRecord, FormatsLocalTimeWithMicroseconds) {
  auto text = format_local_time(Invocation::Clock::now());
  ASSERT_EQ(text.size(), 26u) << text;
  EXPECT_EQ(text[4], '-');
  EXPECT_EQ(text[10], ' ');
  EXPECT_EQ(text[19], '.');
}

TEST(InvokeBody, KeepsAValidTraceparentAndIgnoresAnInvalidOne) {
  const std::string valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  EXPECT_EQ(parse(R"({"traceparent": ")" + valid + R"("})").traceparent, valid);
  EXPECT_EQ(parse(R"({"traceparent": "00-xyz-01"})").traceparent, "");
  EXPECT_EQ(parse(R"({"traceparent": null})").traceparent, "");
  EXPECT_EQ(parse_error(R"({"traceparent": 1})"), ErrorCode::invalid_input);
  InvokeRequest request;
  request.traceparent = valid;
  EXPECT_EQ(parse(invoke_body(request)).traceparent, valid) << "kept in the inbox with the call";
}

TEST(Traceparent, ReadsTheFourFieldsAndRefusesWhatTheSpecRefuses) {
  auto parsed = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(parsed->flags, "01");
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"));  // a later version
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // extra on version 00
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"}) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
  EXPECT_EQ(make_trace_id().size(), 32u);
  EXPECT_EQ(make_span_id().size(), 16u);
}

}  // namespace
}  // namespace faas
