// CSV fields and records: RFC 4180 quoting round-trips, and a record cut short is left out.

#include <gtest/gtest.h>

#include <tlkit/core/csv.h>

TEST(Csv, QuotesOnlyWhatNeedsIt) {
  EXPECT_EQ(tlkit::csv_field("plain/path.jpg"), "plain/path.jpg");
  EXPECT_EQ(tlkit::csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(tlkit::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(tlkit::csv_field("two\nlines"), "\"two\nlines\"");
}

TEST(Csv, RecordsRoundTripAndAPartialLastRecordIsLeftOut) {
  const std::vector<std::string> tricky{"a,b \"c\".png", "two\nlines.jpg", "", "x"};
  const auto text = tlkit::csv_record({"path", "label", "p", "error"}) + tlkit::csv_record(tricky);
  auto parsed = tlkit::parse_csv(text);
  ASSERT_EQ(parsed.records.size(), 2u);
  EXPECT_EQ(parsed.records[1], tricky);
  EXPECT_EQ(parsed.complete_bytes, text.size());
  // Cut inside the quoted newline: only the header is whole.
  const auto cut = text.substr(0, text.find("two") + 4);
  parsed = tlkit::parse_csv(cut);
  ASSERT_EQ(parsed.records.size(), 1u);
  EXPECT_EQ(parsed.complete_bytes, text.find('\n') + 1);
  // CRLF line ends read the same.
  parsed = tlkit::parse_csv("a,b\r\nc,d\r\n");
  ASSERT_EQ(parsed.records.size(), 2u);
  EXPECT_EQ(parsed.records[1], (std::vector<std::string>{"c", "d"}));
}
