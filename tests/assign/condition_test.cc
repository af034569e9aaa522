#include "assign/condition.h"

#include <gtest/gtest.h>

namespace fulcrum::assign {
namespace {

using json = nlohmann::json;

const json kUser = {{"id", "user_1"},
                    {"tier", "free"},
                    {"country", "GB"},
                    {"app_version", "5.10.2"},
                    {"segment", "student"}};

TEST(Condition, BankTargetingExamples) {
  EXPECT_TRUE(eval_condition(kUser, json::parse(R"({"tier": "free"})")));
  EXPECT_FALSE(eval_condition(kUser, json::parse(R"({"tier": {"$ne": "free"}})")));
  EXPECT_TRUE(eval_condition(kUser, json::parse(R"({"country": {"$in": ["GB", "IE"]}})")));
  EXPECT_FALSE(eval_condition(kUser, json::parse(R"({"country": {"$nin": ["GB"]}})")));
  // 5.10.2 > 5.9.0 as versions although "5.10.2" < "5.9.0" as text.
  EXPECT_TRUE(eval_condition(kUser, json::parse(R"({"app_version": {"$vgte": "5.9.0"}})")));
  EXPECT_FALSE(eval_condition(kUser, json::parse(R"({"app_version": {"$gte": "5.9.0"}})")));
  EXPECT_TRUE(eval_condition(kUser, json::parse(R"({"$or": [{"tier": "premium"},
                                                            {"segment": "student"}]})")));
  EXPECT_FALSE(eval_condition(kUser, json::parse(R"({"referrer": {"$exists": true}})")));
  EXPECT_TRUE(eval_condition(kUser, json::parse(R"({"$not": {"tier": "premium"}})")));
  EXPECT_TRUE(eval_condition(kUser, json::object()));
}

TEST(Condition, ValidationNamesThePath) {
  EXPECT_TRUE(validate_condition(json::parse(R"({"tier": "free"})")).is_ok());
  EXPECT_TRUE(
      validate_condition(
          json::parse(
              R"({"$and": [{"app_version": {"$vgte": "5.2.0"}}, {"country": {"$in": ["GB"]}}]})"))
          .is_ok());

  auto s = validate_condition(json::parse(R"({"app_version": {"$vgtt": "5.2.0"}})"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.field(), "targeting.app_version.$vgtt");

  s = validate_condition(json::parse(R"({"country": {"$in": "GB"}})"));
  EXPECT_EQ(s.field(), "targeting.country.$in");

  s = validate_condition(json::parse(R"({"$or": [{"tier": "free"}, {"x": {"$regex": "[("}}]})"));
  EXPECT_EQ(s.field(), "targeting.$or[1].x.$regex");

  s = validate_condition(json::parse(R"({"tier": {"$eq": "free", "plain": 1}})"));
  EXPECT_EQ(s.field(), "targeting.tier.$eq");

  EXPECT_EQ(validate_condition(json::array()).field(), "targeting");
  EXPECT_EQ(validate_condition(json::parse(R"({"$or": {"a": 1}})")).field(), "targeting.$or");
}

}  // namespace
}  // namespace fulcrum::assign

namespace fulcrum::assign {
namespace {

// Conditions are depth-bounded: validation refuses deep ones naming the path, and evaluation
// of a hand-built condition 100,000 levels deep (never validated) fails the match instead of
// overflowing the stack.
TEST(Condition, DeepConditionsAreRefusedAndNeverRecurseWithoutBound) {
  nlohmann::json condition = {{"tier", "free"}};
  for (int i = 0; i < 16; ++i) condition = {{"$not", condition}};
  EXPECT_TRUE(validate_condition(condition).is_ok());
  condition = {{"$not", condition}};
  Status too_deep = validate_condition(condition);
  ASSERT_FALSE(too_deep.is_ok());
  EXPECT_NE(too_deep.message().find("deeper than 16 levels"), std::string::npos);

  // Built by moves only: copying a value this deep would itself recurse.
  nlohmann::json bomb = {{"tier", "free"}};
  for (int i = 0; i < 100'000; ++i) {
    nlohmann::json list = nlohmann::json::array();
    list.push_back(std::move(bomb));
    bomb = nlohmann::json::object();
    bomb["$and"] = std::move(list);
  }
  const nlohmann::json attributes = {{"tier", "free"}};
  EXPECT_FALSE(eval_condition(attributes, bomb));
  EXPECT_FALSE(validate_condition(bomb).is_ok());

  nlohmann::json values = "x";
  for (int i = 0; i < 100'000; ++i) {
    nlohmann::json wrapper = nlohmann::json::object();
    wrapper["$elemMatch"] = std::move(values);
    values = std::move(wrapper);
  }
  nlohmann::json on_tier = nlohmann::json::object();
  on_tier["tier"] = std::move(values);
  EXPECT_FALSE(eval_condition(attributes, on_tier));
  EXPECT_FALSE(validate_condition(on_tier).is_ok());
}

TEST(Condition, SizeAndRegexLengthAreLimited) {
  nlohmann::json in = nlohmann::json::array();
  for (int i = 0; i < 2000; ++i) in.push_back("country-" + std::to_string(i));
  Status big = validate_condition({{"country", {{"$in", in}}}});
  ASSERT_FALSE(big.is_ok());
  EXPECT_EQ(big.field(), "targeting");
  Status regex = validate_condition({{"name", {{"$regex", std::string(257, 'a')}}}});
  ASSERT_FALSE(regex.is_ok());
  EXPECT_EQ(regex.field(), "targeting.name.$regex");
  // A subject longer than the regex bound never matches (libstdc++'s matcher recurses per
  // character), so a 1 MB attribute cannot exhaust the stack.
  EXPECT_FALSE(eval_condition({{"name", std::string(1'000'000, 'a')}},
                              {{"name", {{"$regex", "^a*$"}}}}));
  EXPECT_TRUE(eval_condition({{"name", std::string(100, 'a')}}, {{"name", {{"$regex", "^a*$"}}}}));
}

// JavaScript's String(1e20) is "100000000000000000000" (beyond int64: no overflowing cast).
TEST(Condition, LargeIntegralNumbersCompareAsJavaScriptStrings) {
  EXPECT_TRUE(eval_condition({{"n", 1e20}}, {{"n", "100000000000000000000"}}));
  EXPECT_TRUE(eval_condition({{"n", -1e20}}, {{"n", {{"$regex", "^-1000"}}}}));
}

// Found by condition_fuzzer: libstdc++'s regex compiler overflows a signed long (undefined
// behaviour) on a back-reference or repetition count of many digits. Such a pattern is refused
// at save time, naming the field, and never matches in a stored condition.
TEST(Condition, RegexWithAnOversizedBackReferenceOrCountIsRefused) {
  for (const char* pattern :
       {R"(a\\\4444444444444444444)", "a{1,99999999999}", "a{44444444444}"}) {
    const json condition = {{"name", {{"$regex", pattern}}}};
    Status s = validate_condition(condition);
    ASSERT_FALSE(s.is_ok()) << pattern;
    EXPECT_EQ(s.field(), "targeting.name.$regex") << pattern;
    EXPECT_FALSE(eval_condition(json{{"name", "a4"}}, condition)) << pattern;
  }
  EXPECT_TRUE(validate_condition(json{{"name", {{"$regex", R"(^(a)\1{2,12}$)"}}}}).is_ok());
  EXPECT_TRUE(
      eval_condition(json{{"name", "aaa"}}, json{{"name", {{"$regex", R"(^(a)\1{2,12}$)"}}}}));
}

}  // namespace

}  // namespace fulcrum::assign
