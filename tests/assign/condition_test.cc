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
