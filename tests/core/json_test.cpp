#include <tlkit/core/json.h>

#include <gtest/gtest.h>

#include <tlkit/core/error.h>

#include "support/test_support.h"

TEST(Json, RoundTripKeepsValuesAndKeyOrder) {
  tlkit::Json doc;
  doc["name"] = "vgg \"16\"\n\xc3\xa9";
  doc["count"] = std::int64_t{9007199254740993};  // not exact as a double
  doc["lr"] = 1e-4;
  doc["third"] = 1.0 / 3.0;
  doc["frozen"] = false;
  doc["nothing"] = nullptr;
  doc["names"] = std::vector<std::string>{"a", "b"};
  doc["nested"]["list"].push_back(tlkit::Json::object());
  for (const int indent : {-1, 2}) {
    const auto back = tlkit::Json::parse(doc.dump(indent));
    EXPECT_EQ(back.keys(), doc.keys());
    EXPECT_EQ(back.at("name").as_string(), "vgg \"16\"\n\xc3\xa9");
    EXPECT_EQ(back.at("count").as_int(), 9007199254740993);
    EXPECT_EQ(back.at("lr").as_double(), 1e-4);
    EXPECT_EQ(back.at("third").as_double(), 1.0 / 3.0);
    EXPECT_FALSE(back.at("frozen").as_bool());
    EXPECT_TRUE(back.at("nothing").is_null());
    EXPECT_EQ(back.at("names").as_string_list(), (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(back.at("nested").at("list").at(0).is_object());
  }
}

TEST(Json, ReadsWhatPythonWrites) {
  const auto result =
      tlkit::test::run_command(tlkit::test::torch_python() +
                               " -c \"import json; print(json.dumps({'s': 'caf\\u00e9 "
                               "\\U0001F600', 'x': [1.5e-7, -2, True]}))\"");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto doc = tlkit::Json::parse(result.output);
  EXPECT_EQ(doc.at("s").as_string(), "caf\xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(doc.at("x").at(0).as_double(), 1.5e-7);
  EXPECT_EQ(doc.at("x").at(1).as_int(), -2);
  EXPECT_TRUE(doc.at("x").at(2).as_bool());
}

TEST(Json, BadTextAndWrongTypesAreErrors) {
  EXPECT_THROW(tlkit::Json::parse("{\"a\": }"), tlkit::Error);
  EXPECT_THROW(tlkit::Json::parse("[1, 2"), tlkit::Error);
  EXPECT_THROW(tlkit::Json::parse("{} extra"), tlkit::Error);
  EXPECT_THROW(tlkit::Json::parse("\"unterminated"), tlkit::Error);
  const auto doc = tlkit::Json::parse("{\"a\": \"text\"}");
  EXPECT_THROW(doc.at("a").as_int(), tlkit::Error);
  EXPECT_THROW(doc.at("missing"), tlkit::Error);
  // Whole numbers beyond int64 are an error, not an undefined cast (found by fuzz_manifest).
  const auto big = tlkit::Json::parse("[1e30, -1e19, 9223372036854775808.0, 4e18]");
  EXPECT_THROW(big.at(size_t{0}).as_int(), tlkit::Error);
  EXPECT_THROW(big.at(1).as_int(), tlkit::Error);
  EXPECT_THROW(big.at(2).as_int(), tlkit::Error);
  EXPECT_EQ(big.at(3).as_int(), 4000000000000000000);
}
