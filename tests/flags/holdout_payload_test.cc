// Global holdouts in the SDK payload: the GrowthBook holdout rule's exact shape ahead of the
// opted-in rules, and — through the one evaluator — the same decision for every user as the
// /assign path (plan_assignment) and as Holdout::holds_out: held-out users get the off
// value, everyone else the test's variant.
#include <gtest/gtest.h>

#include <cmath>

#include "../support/sqlite_store_fixture.h"
#include "assign/evaluator.h"
#include "experiments/holdout.h"
#include "experiments/service.h"
#include "flags/payload.h"
#include "flags/service.h"

namespace fulcrum::flags {
namespace {

using json = nlohmann::json;
namespace ex = experiments;
using testing_support::SqliteStoreFixture;

class HoldoutPayloadTest : public SqliteStoreFixture {
 protected:
  SdkPayload build() {
    auto flags = list_flags(store(), true);
    auto tests = ex::list_ab_tests(store());
    auto holdouts = ex::list_holdouts(store());
    EXPECT_TRUE(flags.is_ok() && tests.is_ok() && holdouts.is_ok());
    return build_payload(*flags, *tests, *holdouts);
  }
  void make_holdout(double percent = 10) {
    auto made = ex::create_holdout(
        store(), clock_, {{"holdout_id", "hold-2026"}, {"name", "2026"}, {"percent", percent}},
        "test");
    ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  }
  void make_test(const std::string& id, const std::string& feature, bool opted_in) {
    json request = {{"test_name", id},
                    {"feature_name", feature},
                    {"success_metrics", {"conversion_rate"}},
                    {"test_groups", {{"control", {{"v", 0}}}, {"variant", {{"v", 1}}}}},
                    {"traffic_allocation", {{"control", 0.5}, {"variant", 0.5}}}};
    if (opted_in) request["holdout_id"] = "hold-2026";
    auto made = ex::create_ab_test_with_id(store(), clock_, id, request);
    ASSERT_TRUE(made.is_ok()) << made.status().to_string();
    ASSERT_TRUE(ex::start_ab_test(store(), clock_, id).is_ok());
  }
  ManualClock clock_{1'800'000'000};
};

TEST_F(HoldoutPayloadTest, OptedInFeatureStartsWithGrowthBooksHoldoutRule) {
  make_holdout(10);
  auto flag = create_flag(store(), clock_, json::parse(R"({
      "key": "checkout", "value_type": "json", "default_value": {"v": -1}})"),
                          "test");
  ASSERT_TRUE(flag.is_ok()) << flag.status().to_string();
  make_test("t-in", "checkout", true);
  make_test("t-out", "other_feature", false);
  SdkPayload payload = build();
  const json& rules = payload.features["checkout"]["rules"];
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0], json::parse(R"({
      "id": "holdout:hold-2026", "key": "hold-2026", "hashAttribute": "id",
      "seed": "hold-2026", "hashVersion": 2, "variations": [{"v": -1}, {"v": -1}],
      "ranges": [[0.0, 0.1], [0.1, 1.0]], "name": "2026",
      "meta": [{"key": "holdoutcontrol", "name": "Holdout"},
               {"key": "holdouttreatment", "name": "General population",
                "passthrough": true}]})"));
  EXPECT_EQ(rules[1]["key"], "t-in");
  // A feature whose test did not opt in has no holdout rule.
  ASSERT_EQ(payload.features["other_feature"]["rules"].size(), 1u);
  EXPECT_EQ(payload.features["other_feature"]["rules"][0]["key"], "t-out");

  // Stopping the holdout releases its users: the rule is gone.
  ASSERT_TRUE(ex::stop_holdout(store(), clock_, "hold-2026", "test").is_ok());
  payload = build();
  ASSERT_EQ(payload.features["checkout"]["rules"].size(), 1u);
  EXPECT_EQ(payload.features["checkout"]["rules"][0]["key"], "t-in");
}

TEST_F(HoldoutPayloadTest, FlagRuleGetsTheHoldoutRuleRightBeforeIt) {
  make_holdout(5);
  auto flag = create_flag(store(), clock_, json::parse(R"({
      "key": "new_home", "value_type": "boolean", "default_value": false,
      "rules": [{"id": "staff", "type": "force", "condition": {"segment": "staff"},
                 "value": true},
                {"id": "rollout", "type": "force", "value": true, "coverage": 0.5,
                 "holdout_id": "hold-2026"}]})"),
                          "test");
  ASSERT_TRUE(flag.is_ok()) << flag.status().to_string();
  EXPECT_EQ(to_json(*flag)["rules"][1]["holdout_id"], "hold-2026");
  const SdkPayload payload = build();
  const json& rules = payload.features["new_home"]["rules"];
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0]["id"], "staff");
  EXPECT_EQ(rules[1]["id"], "holdout:hold-2026");
  EXPECT_EQ(rules[1]["variations"], json::parse("[false, false]"));
  EXPECT_EQ(rules[2]["id"], "rollout");
}

// The payload's holdout rule, evaluated by the one evaluator, agrees with holds_out() and
// with /assign's decision for 20,000 users; the held-out share is near 10% and independent
// of the test's own bucketing (both tests' variants split ~50/50 inside and outside).
TEST_F(HoldoutPayloadTest, EvaluatorAssignAndHoldsOutAgreeForEveryUser) {
  make_holdout(10);
  make_test("t-in", "checkout", true);
  SdkPayload payload = build();
  auto compiled = assign::CompiledFeatures::compile(payload.features);
  ASSERT_TRUE(compiled.is_ok()) << compiled.status().to_string();
  auto test = ex::get_ab_test(store(), "t-in");
  auto holdout = ex::get_holdout(store(), "hold-2026");
  ASSERT_TRUE(test.is_ok() && holdout.is_ok());
  int held = 0, held_variant = 0, general = 0, general_variant = 0;
  const int users = 20000;
  for (int i = 0; i < users; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const json attributes = {{"id", user}};
    assign::EvalContext context;
    context.attributes = &attributes;
    const assign::FeatureResult result = compiled->evaluate("checkout", context);
    std::optional<ExposureEvent> exposure;
    auto assigned = ex::plan_assignment(store(), *test, user, nullptr, clock_.now(), exposure);
    ASSERT_TRUE(assigned.is_ok());
    const bool held_out = holdout->holds_out(attributes);
    ASSERT_EQ(assigned->held_out, held_out) << user;
    ASSERT_EQ(result.experiment_key.value_or(""), held_out ? "hold-2026" : "t-in") << user;
    const bool exposed = exposure.has_value();
    // The test's own bucketing, whether or not the user is held out.
    auto unheld = *test;
    unheld.config.holdout_id.clear();
    std::optional<ExposureEvent> ignored;
    auto bucketed = ex::plan_assignment(store(), unheld, user, nullptr, clock_.now(), ignored);
    ASSERT_TRUE(bucketed.is_ok());
    const bool variant = bucketed->variant == "variant";
    if (held_out) {
      ++held;
      held_variant += variant;
      EXPECT_TRUE(result.value.is_null()) << user;  // the implicit feature's off value
      EXPECT_FALSE(assigned->in_experiment);
      EXPECT_FALSE(assigned->variant.has_value());
      EXPECT_FALSE(exposed);
      EXPECT_EQ(assigned->reason, "holdout");
      EXPECT_EQ(result.experiment_result->key, "holdoutcontrol");
    } else {
      ++general;
      general_variant += variant;
      ASSERT_TRUE(assigned->variant.has_value());
      EXPECT_EQ(result.experiment_result->key, *assigned->variant) << user;
      EXPECT_EQ(result.value, assigned->config) << user;
    }
  }
  // 10% +- 4.5 standard errors; the variant share within each group 50% +- 4.5 s.e.
  const double share = static_cast<double>(held) / users;
  EXPECT_NEAR(share, 0.10, 4.5 * std::sqrt(0.1 * 0.9 / users));
  EXPECT_NEAR(static_cast<double>(held_variant) / held, 0.5, 4.5 * std::sqrt(0.25 / held));
  EXPECT_NEAR(static_cast<double>(general_variant) / general, 0.5, 4.5 * std::sqrt(0.25 / general));
}

TEST_F(HoldoutPayloadTest, BadHoldoutIdsOnFlagRulesNameTheField) {
  auto unknown = create_flag(store(), clock_, json::parse(R"({
      "key": "f", "value_type": "boolean", "default_value": false,
      "rules": [{"type": "force", "value": true},
                {"type": "force", "value": true, "holdout_id": "nope"}]})"),
                             "test");
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().field(), "rules[1].holdout_id");
  make_holdout();
  ASSERT_TRUE(ex::stop_holdout(store(), clock_, "hold-2026", "test").is_ok());
  auto stopped = create_flag(store(), clock_, json::parse(R"({
      "key": "f", "value_type": "boolean", "default_value": false,
      "rules": [{"type": "force", "value": true, "holdout_id": "hold-2026"}]})"),
                             "test");
  ASSERT_FALSE(stopped.is_ok());
  EXPECT_EQ(stopped.status().field(), "rules[0].holdout_id");
}

}  // namespace
}  // namespace fulcrum::flags
