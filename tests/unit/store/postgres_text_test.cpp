// The text forms of PostgreSQL parameters (store/postgres_text.hpp); the cluster tests send them to a real server.
#include <gtest/gtest.h>

#include "store/postgres_text.hpp"

namespace pg = faas::store::pg;

TEST(ArrayText, QuotesEveryElementAndEscapesQuotesAndBackslashes) {
  pg::ArrayText array;
  EXPECT_EQ(array.finish(), "{}");
  array.clear();
  array.add("plain");
  array.add(R"({"a":"b\"c"})");
  array.add("");
  array.add("NULL");  // an element, not SQL NULL: it is quoted
  EXPECT_EQ(array.size(), 4u);
  EXPECT_EQ(array.finish(), R"({"plain","{\"a\":\"b\\\"c\"}","","NULL"})");
  array.add("more");  // reopened after finish()
  EXPECT_EQ(array.finish(), R"({"plain","{\"a\":\"b\\\"c\"}","","NULL","more"})");
}

TEST(CopyText, SeparatesWithTabsAndNewlinesAndEscapesThem) {
  pg::CopyText rows;
  rows.field("id-1");
  rows.field("a\tb\nc\rd\\e");
  rows.end_row();
  rows.field("id-2");
  rows.field("");
  rows.end_row();
  EXPECT_EQ(rows.text(), "id-1\ta\\tb\\nc\\rd\\\\e\nid-2\t\n");
}

TEST(Utf8, InvalidSequencesAndNulBecomeReplacementCharacters) {
  std::string valid = "caf\xC3\xA9 \xF0\x9F\x98\x80";
  EXPECT_TRUE(pg::is_valid_utf8(valid));
  EXPECT_FALSE(pg::make_valid_utf8(valid));
  EXPECT_EQ(valid, "caf\xC3\xA9 \xF0\x9F\x98\x80");

  std::string broken = std::string("a\xFF") + '\0' + "b\xC3";  // a stray byte, a NUL, a cut sequence
  EXPECT_FALSE(pg::is_valid_utf8(broken));
  EXPECT_TRUE(pg::make_valid_utf8(broken));
  EXPECT_EQ(broken, "a\xEF\xBF\xBD\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  EXPECT_TRUE(pg::is_valid_utf8(broken));
  EXPECT_FALSE(pg::is_valid_utf8("\xED\xA0\x80"));  // a UTF-16 surrogate
}

TEST(Uri, RecognisesPostgresSchemesAndHidesThePassword) {
  EXPECT_TRUE(pg::is_uri("postgresql://u@h/db"));
  EXPECT_TRUE(pg::is_uri("postgres://h"));
  EXPECT_FALSE(pg::is_uri("sqlite"));
  EXPECT_FALSE(pg::is_uri("mysql://h"));
  EXPECT_EQ(pg::redact("postgresql://faas:s3cret@db:5432/faas?sslmode=require"),
            "postgresql://faas:***@db:5432/faas?sslmode=require");
  EXPECT_EQ(pg::redact("postgresql://faas@db/faas"), "postgresql://faas@db/faas");
  EXPECT_EQ(pg::redact("postgresql://db/faas?user=a@b"), "postgresql://db/faas?user=a@b");
}
