// parse_untrusted_json: size and depth limits, errors naming the JSON path, no library
// messages; is_valid_utf8 against RFC 3629's edge cases.
#include "core/untrusted_json.h"

#include <gtest/gtest.h>

namespace fulcrum {
namespace {

TEST(UntrustedJsonTest, ParsesOrdinaryDocuments) {
  auto parsed = parse_untrusted_json(R"({"a": [1, 2.5, "x", null, true, {"b": []}]})");
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ((*parsed)["a"][5]["b"], nlohmann::json::array());
  EXPECT_TRUE(parse_untrusted_json_object("{}").is_ok());
  EXPECT_FALSE(parse_untrusted_json_object("[]").is_ok());
}

TEST(UntrustedJsonTest, DepthIsLimitedAndTheErrorNamesThePath) {
  std::string at_limit(64, '[');
  at_limit += std::string(64, ']');
  EXPECT_TRUE(parse_untrusted_json(at_limit).is_ok());
  auto too_deep = parse_untrusted_json(std::string(65, '[') + std::string(65, ']'));
  ASSERT_FALSE(too_deep.is_ok());
  EXPECT_EQ(too_deep.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_deep.status().message().find("JSON nesting deeper than 64 levels"),
            std::string::npos);

  // A million levels: the parse stops at the limit (no recursion, no stack overflow).
  auto bomb = parse_untrusted_json(std::string(1'000'000, '['));
  ASSERT_FALSE(bomb.is_ok());
  EXPECT_NE(bomb.status().message().find("deeper than 64"), std::string::npos);

  JsonLimits three;
  three.max_depth = 3;
  auto named = parse_untrusted_json(R"({"events": [1, {"attributes": {"x": 1}}]})", "body", three);
  ASSERT_FALSE(named.is_ok());
  EXPECT_EQ(named.status().field(), "events[1].attributes");
  EXPECT_EQ(named.status().message(), "JSON nesting deeper than 3 levels at events[1].attributes");
}

TEST(UntrustedJsonTest, SizeIsLimited) {
  JsonLimits small;
  small.max_bytes = 10;
  auto big = parse_untrusted_json(R"({"a": "0123456789"})", "body", small);
  ASSERT_FALSE(big.is_ok());
  EXPECT_EQ(big.status().field(), "body");
  EXPECT_NE(big.status().message().find("limit of 10"), std::string::npos);
}

TEST(UntrustedJsonTest, ErrorsNameTheFieldWithoutLibraryMessages) {
  auto overflow = parse_untrusted_json(R"({"alpha": 1e400})");
  ASSERT_FALSE(overflow.is_ok());
  EXPECT_EQ(overflow.status().field(), "alpha");
  EXPECT_EQ(overflow.status().message().find("json.exception"), std::string::npos);
  EXPECT_NE(overflow.status().message().find("does not fit a double"), std::string::npos);

  auto utf8 = parse_untrusted_json("{\"events\": [{\"user_id\": \"\xff\"}]}");
  ASSERT_FALSE(utf8.is_ok());
  EXPECT_EQ(utf8.status().field(), "events[0].user_id");
  EXPECT_NE(utf8.status().message().find("invalid UTF-8"), std::string::npos);

  auto syntax = parse_untrusted_json(R"({"a": 1, "b": [1, 2, oops]})");
  ASSERT_FALSE(syntax.is_ok());
  EXPECT_EQ(syntax.status().field(), "b[2]");
  EXPECT_NE(syntax.status().message().find("at byte"), std::string::npos);
  EXPECT_EQ(syntax.status().message().find("json.exception"), std::string::npos);

  auto after_member = parse_untrusted_json(R"({"a": 1, "b)");
  ASSERT_FALSE(after_member.is_ok());
  EXPECT_EQ(after_member.status().field(), "body");

  EXPECT_EQ(parse_untrusted_json("  ").status().field(), "body");
  EXPECT_EQ(parse_untrusted_json("", "input").status().field(), "input");
}

TEST(UntrustedJsonTest, DumpReplacesInvalidUtf8InsteadOfThrowing) {
  nlohmann::json value = {{"detail", std::string("bad \xff byte")}};
  EXPECT_THROW((void)value.dump(), nlohmann::json::type_error);
  EXPECT_EQ(dump_json(value), "{\"detail\":\"bad \xEF\xBF\xBD byte\"}");
}

TEST(UntrustedJsonTest, DepthOfBuiltDocumentsIsMeasuredIteratively) {
  nlohmann::json deep = 1;
  for (int i = 0; i < 100'000; ++i) {
    nlohmann::json list = nlohmann::json::array();
    list.push_back(std::move(deep));
    deep = std::move(list);
  }
  EXPECT_TRUE(json_depth_exceeds(deep, 64));
  EXPECT_FALSE(json_depth_exceeds(nlohmann::json::parse("[[[1]]]"), 3));
  EXPECT_TRUE(json_depth_exceeds(nlohmann::json::parse("[[[1]]]"), 2));
}

TEST(UntrustedJsonTest, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // été € 😀
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation byte
}

TEST(UntrustedJsonTest, ShortenNeverSplitsACharacter) {
  EXPECT_EQ(shorten_for_message("abc", 5), "abc");
  EXPECT_EQ(shorten_for_message("\xC3\xA9\xC3\xA9", 3), "\xC3\xA9...");
}

}  // namespace
}  // namespace fulcrum
