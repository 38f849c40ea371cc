// The multipart/form-data parser: what browsers and curl send, and malformed input.
#include "multipart.hpp"

#include <gtest/gtest.h>

#include "faas/error.hpp"

namespace faas::http {
namespace {

std::string form(const std::string& boundary, const std::vector<std::pair<std::string, std::string>>& parts) {
  std::string body;
  for (const auto& [headers, data] : parts) body += "--" + boundary + "\r\n" + headers + "\r\n\r\n" + data + "\r\n";
  return body + "--" + boundary + "--\r\n";
}

std::string error_of(std::string_view body, std::string_view boundary) {
  try {
    parse_multipart(body, boundary);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_input);
    return e.what();
  }
  return "";
}

TEST(Multipart, BoundaryFromContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=----WebKitFormBoundaryX1"), "----WebKitFormBoundaryX1");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data;boundary=\"a b\""), "a b");
  EXPECT_EQ(multipart_boundary("multipart/form-data; charset=utf-8; boundary=xyz"), "xyz");
  EXPECT_THROW(multipart_boundary("application/json"), Error);
  EXPECT_THROW(multipart_boundary("multipart/form-data"), Error);
  EXPECT_THROW(multipart_boundary("multipart/form-data; boundary="), Error);
  EXPECT_THROW(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'a')), Error);
  EXPECT_THROW(multipart_boundary("multipart/form-data; boundary=\"open"), Error);
}

TEST(Multipart, FieldsAndFilesAsCurlSendsThem) {
  std::string body = form("XYZ", {{"Content-Disposition: form-data; name=\"name\"", "calc"},
                                  {"Content-Disposition: form-data; name=\"code\"; filename=\"func.py\"\r\n"
                                   "Content-Type: text/x-python",
                                   "def main(a, b):\r\n    return a + b\r\n"}});
  auto parts = parse_multipart(body, "XYZ");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "name");
  EXPECT_FALSE(parts[0].filename);
  EXPECT_EQ(parts[0].data, "calc");
  EXPECT_EQ(parts[1].name, "code");
  EXPECT_EQ(parts[1].filename, "func.py");
  EXPECT_EQ(parts[1].content_type, "text/x-python");
  EXPECT_EQ(parts[1].data, "def main(a, b):\r\n    return a + b\r\n");  // CRLFs inside data are kept
  EXPECT_EQ(find_part(parts, "code"), &parts[1]);
  EXPECT_EQ(find_part(parts, "nothing"), nullptr);
}

TEST(Multipart, PreambleEpilogueEmptyPartsAndPadding) {
  std::string body = "preamble to ignore\r\n--b  \r\nContent-Disposition: form-data; name=empty\r\n\r\n\r\n"
                     "--b\r\ncontent-disposition: FORM-DATA; NAME=\"q\\\"uoted\"; filename=\"\"\r\n\r\nx\r\n--b--"
                     "epilogue";
  auto parts = parse_multipart(body, "b");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "empty");
  EXPECT_EQ(parts[0].data, "");
  EXPECT_EQ(parts[1].name, "q\"uoted");
  EXPECT_EQ(parts[1].filename, "");
  EXPECT_EQ(parts[1].data, "x");
}

TEST(Multipart, DataMayContainTheBoundaryTextNotAfterCrlf) {
  std::string body = form("bnd", {{"Content-Disposition: form-data; name=\"code\"", "a--bnd b\n--bnd c"}});
  auto parts = parse_multipart(body, "bnd");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].data, "a--bnd b\n--bnd c");
}

TEST(Multipart, MalformedAndTruncatedInputSaysWhy) {
  std::string whole = form("b", {{"Content-Disposition: form-data; name=\"code\"", "data"}});
  EXPECT_NE(error_of("", "b").find("no boundary"), std::string::npos);
  EXPECT_NE(error_of(whole.substr(0, 20), "b").find("truncated"), std::string::npos);
  EXPECT_NE(error_of(whole.substr(0, whole.size() - 9), "b").find("truncated"), std::string::npos);
  EXPECT_NE(error_of("--b", "b").find("truncated"), std::string::npos);
  EXPECT_NE(error_of("--bX\r\n", "b").find("CRLF"), std::string::npos);
  EXPECT_NE(error_of("--b\r\nContent-Type: x\r\n\r\nd\r\n--b--", "b").find("Content-Disposition"), std::string::npos);
  EXPECT_NE(error_of("--b\r\nContent-Disposition: attachment; name=x\r\n\r\nd\r\n--b--", "b").find("form-data"),
            std::string::npos);
  EXPECT_NE(error_of("--b\r\nContent-Disposition: form-data\r\n\r\nd\r\n--b--", "b").find("no name"),
            std::string::npos);
  EXPECT_NE(error_of("--b\r\nno colon here\r\n\r\nd\r\n--b--", "b").find("':'"), std::string::npos);
  EXPECT_NE(error_of("--b\r\n\r\nd\r\n--b--", "b").find("Content-Disposition"), std::string::npos);
}

TEST(Multipart, LimitsOnPartsAndHeaders) {
  std::vector<std::pair<std::string, std::string>> many(17, {"Content-Disposition: form-data; name=\"f\"", "x"});
  EXPECT_NE(error_of(form("b", many), "b").find("more than 16 parts"), std::string::npos);
  std::string huge_header = "Content-Disposition: form-data; name=\"f\"\r\nX-Pad: " + std::string(9000, 'p');
  EXPECT_NE(error_of(form("b", {{huge_header, "x"}}), "b").find("too large"), std::string::npos);
}

}  // namespace
}  // namespace faas::http
