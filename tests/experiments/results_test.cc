// analyze_ab_test_results on a real SQLite store with synthetic exposures and metric events
// whose effects are planted exactly, so the expected rates and verdicts are known.
#include <gtest/gtest.h>

#include "assign/assigner.h"
#include "experiments/service.h"
#include "../support/sqlite_store_fixture.h"

namespace fulcrum::experiments {
using testing_support::SqliteStoreFixture;
namespace {

using json = nlohmann::json;

constexpr UnixSeconds kStart = 1'700'006'400;  // a day boundary (1700006400 % 86400 == 0)

json request() {
  return json::parse(R"({
    "test_name": "Feature UI Test", "feature_name": "account_linking",
    "success_metrics": ["conversion_rate", "revenue_per_user"],
    "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
    "traffic_allocation": {"control": 0.5, "variant": 0.5}})");
}

struct Plan {
  int users_per_group = 4000;
  int control_per_100 = 10;  // conversions per 100 users
  int variant_per_100 = 14;
  double revenue_lift = 2.0;    // added to every variant user's revenue
  int extra_control_users = 0;  // to plant a sample ratio mismatch
};

class ResultsTest : public SqliteStoreFixture {
 protected:
  ManualClock clock_{kStart};

  std::string start_test(const json& r = request()) {
    auto created = create_ab_test(store(), clock_, r);
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    EXPECT_TRUE(start_ab_test(store(), clock_, created->test_id).is_ok());
    return created->test_id;
  }

  // Users are exposed over 10 days; within each group user k converts when k % 100 is
  // below the planted rate, and has revenue = base_k (also seen 3 days before exposure, the
  // CUPED covariate) + small noise + the planted lift for the variant.
  void plant(const std::string& test_id, const Plan& plan) {
    EventBatch batch;
    const int groups[2] = {plan.users_per_group + plan.extra_control_users, plan.users_per_group};
    for (int g = 0; g < 2; ++g) {
      const std::string variant = g == 0 ? "control" : "variant";
      for (int k = 0; k < groups[g]; ++k) {
        const std::string user = variant + "_" + std::to_string(k);
        const UnixSeconds exposed = kStart + (k % 10) * kSecondsPerDay + 3600;
        batch.exposures.push_back({test_id, user, variant, exposed});
        if (k % 100 < (g == 0 ? plan.control_per_100 : plan.variant_per_100)) {
          batch.metric_events.push_back({user, "conversion_rate", 1.0, exposed + 7200});
        }
        const double base = 10.0 + (k % 7) * 5.0;
        const double noise = (k % 3) - 1.0;
        batch.metric_events.push_back(
            {user, "revenue_per_user", base, exposed - 3 * kSecondsPerDay});
        batch.metric_events.push_back({user, "revenue_per_user",
                                       base + noise + (g == 1 ? plan.revenue_lift : 0.0),
                                       exposed + kSecondsPerDay});
      }
    }
    ASSERT_TRUE(store().ingest(batch).is_ok());
    clock_.set(kStart + 10 * kSecondsPerDay);
  }
};

TEST_F(ResultsTest, PlantedLiftIsFoundAndShipped) {
  const std::string id = start_test();
  plant(id, Plan{});
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  const json& r = *results;

  EXPECT_EQ(r["test_name"], "Feature UI Test");
  EXPECT_EQ(r["winner"], "variant");
  EXPECT_EQ(r["recommendation_action"], "ship");
  EXPECT_NE(r["recommendation"].get<std::string>().find("variant"), std::string::npos);

  const json& control = r["group_analysis"]["control"];
  const json& variant = r["group_analysis"]["variant"];
  EXPECT_DOUBLE_EQ(control["conversion_rate"].get<double>(), 0.10);
  EXPECT_DOUBLE_EQ(variant["conversion_rate"].get<double>(), 0.14);
  EXPECT_EQ(control["sample_size"], 4000);
  EXPECT_FALSE(control["winner"].get<bool>());
  // The control against itself: p = 1, significance 0 (numbers, so the seed's `:.3f` works).
  EXPECT_DOUBLE_EQ(control["statistical_significance"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(control["p_value"].get<double>(), 1.0);
  EXPECT_FALSE(control["significant"].get<bool>());
  EXPECT_TRUE(variant["winner"].get<bool>());
  EXPECT_TRUE(variant["significant"].get<bool>());
  EXPECT_LT(variant["p_value"].get<double>(), 1e-6);
  EXPECT_DOUBLE_EQ(variant["statistical_significance"].get<double>(),
                   1.0 - variant["p_value"].get<double>());
  EXPECT_NEAR(variant["lift"].get<double>(), 0.40, 1e-9);  // 0.14 / 0.10 - 1
  EXPECT_LT(variant["confidence_interval"][0].get<double>(), 0.40);
  EXPECT_GT(variant["confidence_interval"][1].get<double>(), 0.40);

  // Revenue: CUPED uses the pre-period and recovers the planted +2.0 tightly.
  ASSERT_EQ(r["metrics"].size(), 2u);
  const json& revenue = r["metrics"][1];
  EXPECT_EQ(revenue["name"], "revenue_per_user");
  EXPECT_EQ(revenue["type"], "continuous");
  EXPECT_TRUE(revenue["cuped_applied"].get<bool>());
  const json& lift = revenue["groups"]["variant"]["absolute"];
  EXPECT_NEAR(lift["estimate"].get<double>(), 2.0, 0.05);
  EXPECT_LT(lift["ci"][0].get<double>(), 2.0);
  EXPECT_GT(lift["ci"][1].get<double>(), 2.0);
  EXPECT_TRUE(revenue["groups"]["variant"]["significant"].get<bool>());

  EXPECT_FALSE(r["srm"]["mismatch"].get<bool>());
  EXPECT_EQ(r["srm"]["observed"]["variant"], 4000);
  EXPECT_EQ(r["total_exposures"], 8000);

  // Charts: ten days of cumulative exposure per group, ending at the totals.
  const json& days = r["daily_cumulative"]["groups"]["variant"];
  ASSERT_EQ(days.size(), 10u);
  EXPECT_EQ(days[0]["date"], format_date(kStart));
  EXPECT_EQ(days.back()["users"], 4000);
  EXPECT_EQ(days.back()["converted"], 560);

  // Completing without a forced winner records the analysis winner.
  auto done = complete_ab_test(store(), clock_, id);
  ASSERT_TRUE(done.is_ok());
  EXPECT_EQ(done->winner, "variant");
  EXPECT_FALSE(done->winner_forced);
}

// revenue_per_user as a guardrail with a 5% margin: a +2 lift is non-inferior (ship); a -6
// lift (about -24%) is significantly worse than the margin and stops the test although the
// conversion goal wins.
json guardrail_request() {
  json r = request();
  r["metric_roles"] = {{"revenue_per_user", "guardrail"}};
  r["non_inferiority_margins"] = {{"revenue_per_user", 0.05}};
  return r;
}

TEST_F(ResultsTest, GuardrailWithinItsMarginLetsTheGoalShip) {
  const std::string id = start_test(guardrail_request());
  plant(id, Plan{});
  auto shipped = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(shipped.is_ok()) << shipped.status().to_string();
  EXPECT_EQ((*shipped)["recommendation_action"], "ship");
  EXPECT_EQ((*shipped)["winner"], "variant");
  EXPECT_EQ((*shipped)["decision_rule"], "goal_wins_guardrails_hold");
  EXPECT_EQ((*shipped)["metrics"][1]["role"], "guardrail");
  EXPECT_TRUE((*shipped)["metrics"][1]["groups"]["variant"]["guardrail"]["non_inferior"]);
}

TEST_F(ResultsTest, HarmedGuardrailStopsAWinningGoal) {
  const std::string id = start_test(guardrail_request());
  plant(id, Plan{.revenue_lift = -6.0});
  auto stopped = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(stopped.is_ok()) << stopped.status().to_string();
  EXPECT_EQ((*stopped)["recommendation_action"], "stop");
  EXPECT_EQ((*stopped)["decision_rule"], "guardrail_harmed");
  EXPECT_EQ((*stopped)["decided_by_metric"], "revenue_per_user");
  EXPECT_TRUE((*stopped)["winner"].is_null());
  EXPECT_TRUE((*stopped)["metrics"][1]["groups"]["variant"]["guardrail"]["harmed"]);
}

// 100 of 8000 users (1.25%) also seen in the other group: flagged; 40 (0.5%): not.
TEST_F(ResultsTest, HealthCheckFlagsUsersExposedToMoreThanOneVariant) {
  const std::string id = start_test();
  plant(id, Plan{});
  auto clean = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(clean.is_ok());
  EXPECT_FALSE((*clean)["health"]["multi_variant_flag"].get<bool>());
  EventBatch crossed;
  for (int k = 0; k < 40; ++k) {
    crossed.exposures.push_back(
        {id, "control_" + std::to_string(k), "variant", kStart + 9 * kSecondsPerDay});
  }
  ASSERT_TRUE(store().ingest(crossed).is_ok());
  auto few = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(few.is_ok());
  EXPECT_EQ((*few)["multi_variant_users"], 40);
  EXPECT_FALSE((*few)["health"]["multi_variant_flag"].get<bool>());
  crossed.exposures.clear();
  for (int k = 0; k < 60; ++k) {
    crossed.exposures.push_back(
        {id, "variant_" + std::to_string(k), "control", kStart + 9 * kSecondsPerDay});
  }
  ASSERT_TRUE(store().ingest(crossed).is_ok());
  auto many = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(many.is_ok());
  EXPECT_EQ((*many)["multi_variant_users"], 100);
  EXPECT_NEAR((*many)["health"]["multi_variant_share"].get<double>(), 100.0 / 8000, 1e-12);
  EXPECT_TRUE((*many)["health"]["multi_variant_flag"].get<bool>());
}

TEST_F(ResultsTest, NoEffectMeansNoWinnerAndKeepRunning) {
  const std::string id = start_test();
  plant(id, Plan{.control_per_100 = 10, .variant_per_100 = 10, .revenue_lift = 0});
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  const json& r = *results;
  EXPECT_TRUE(r["winner"].is_null());
  EXPECT_EQ(r["recommendation_action"], "keep_running");
  EXPECT_FALSE(r["group_analysis"]["variant"]["significant"].get<bool>());
  EXPECT_LT(r["group_analysis"]["variant"]["statistical_significance"].get<double>(), 0.5);
  EXPECT_GT(r["group_analysis"]["variant"]["p_value"].get<double>(), 0.5);
  // A 5% relative lift on a 10% rate needs far more than 4000 users per group; at 400 users
  // per group per day that is a known number of further days.
  ASSERT_TRUE(r["days_needed"].is_number_integer()) << r.dump(2);
  EXPECT_GT(r["days_needed"].get<int>(), 10);
}

TEST_F(ResultsTest, SampleRatioMismatchIsFlagged) {
  const std::string id = start_test();
  plant(id, Plan{.users_per_group = 2000, .extra_control_users = 400});
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  EXPECT_TRUE((*results)["srm"]["mismatch"].get<bool>());
  EXPECT_LT((*results)["srm"]["p_value"].get<double>(), 0.001);
  EXPECT_EQ((*results)["recommendation_action"], "stop");
}

TEST_F(ResultsTest, BayesianAndSequentialMethods) {
  json bayes = request();
  bayes["analysis_method"] = "bayesian";
  const std::string bayes_id = start_test(bayes);
  plant(bayes_id, Plan{});
  auto r = analyze_ab_test_results(store(), clock_, bayes_id);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)["analysis_method"], "bayesian");
  EXPECT_EQ((*r)["winner"], "variant");
  EXPECT_GT((*r)["group_analysis"]["variant"]["chance_to_beat_control"].get<double>(), 0.99);
  EXPECT_TRUE((*r)["metrics"][0]["groups"]["variant"].contains("bayesian"));

  json seq = request();
  seq["analysis_method"] = "sequential";
  clock_.set(kStart);
  const std::string seq_id = start_test(seq);
  plant(seq_id, Plan{});
  auto s = analyze_ab_test_results(store(), clock_, seq_id);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_TRUE((*s)["metrics"][0]["sequential"].get<bool>());
  // Always-valid p-values are larger than fixed-horizon ones for the same data.
  EXPECT_GE((*s)["group_analysis"]["variant"]["raw_p_value"].get<double>(),
            (*r)["group_analysis"]["variant"]["raw_p_value"].get<double>());
  EXPECT_EQ((*s)["winner"], "variant");
}

TEST_F(ResultsTest, MinimumSampleSizeHoldsBackShipping) {
  json r = request();
  r["min_sample_size"] = 10000;
  const std::string id = start_test(r);
  plant(id, Plan{});
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok());
  EXPECT_TRUE((*results)["winner"].is_null());
  EXPECT_EQ((*results)["recommendation_action"], "keep_running");
  EXPECT_NE((*results)["recommendation"].get<std::string>().find("10000"), std::string::npos);
}

TEST_F(ResultsTest, EmptyTestReportsKeepRunning) {
  const std::string id = start_test();
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  EXPECT_TRUE((*results)["winner"].is_null());
  EXPECT_EQ((*results)["recommendation_action"], "keep_running");
  EXPECT_EQ((*results)["group_analysis"]["control"]["sample_size"], 0);
  EXPECT_EQ(analyze_ab_test_results(store(), clock_, "nope").status().code(),
            StatusCode::kNotFound);
}

// The seed formats conversion_rate with :.2%, statistical_significance and p_value with
// :.3f and prints winner: every group needs numbers (and a boolean winner) in every state.
void expect_formattable_groups(const json& results) {
  ASSERT_TRUE(results["group_analysis"].is_object());
  for (const auto& [name, group] : results["group_analysis"].items()) {
    EXPECT_TRUE(group["conversion_rate"].is_number()) << name << ": " << group.dump();
    EXPECT_TRUE(group["statistical_significance"].is_number()) << name << ": " << group.dump();
    EXPECT_TRUE(group["p_value"].is_number()) << name << ": " << group.dump();
    EXPECT_TRUE(group["winner"].is_boolean()) << name << ": " << group.dump();
    const double p = group["p_value"].get<double>();
    EXPECT_GE(p, 0.0);
    EXPECT_LE(p, 1.0);
    EXPECT_DOUBLE_EQ(group["statistical_significance"].get<double>(), 1.0 - p);
  }
}

TEST_F(ResultsTest, GroupFieldsAreNumbersWhenTheTestJustStarted) {
  const std::string id = start_test();
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  expect_formattable_groups(*results);
  EXPECT_DOUBLE_EQ((*results)["group_analysis"]["variant"]["p_value"].get<double>(), 1.0);
}

TEST_F(ResultsTest, GroupFieldsAreNumbersWhenOneGroupIsEmpty) {
  const std::string id = start_test();
  EventBatch batch;
  for (int k = 0; k < 50; ++k) {
    const std::string user = "only_control_" + std::to_string(k);
    batch.exposures.push_back({id, user, "control", kStart + 3600});
    if (k % 5 == 0) batch.metric_events.push_back({user, "conversion_rate", 1.0, kStart + 7200});
  }
  ASSERT_TRUE(store().ingest(batch).is_ok());
  clock_.set(kStart + kSecondsPerDay);
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  expect_formattable_groups(*results);
  EXPECT_DOUBLE_EQ((*results)["group_analysis"]["control"]["conversion_rate"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ((*results)["group_analysis"]["variant"]["conversion_rate"].get<double>(), 0.0);
}

TEST_F(ResultsTest, GroupFieldsAreNumbersWhenNobodyConverted) {
  // Zero conversions in both groups: no variance, the test statistic is undefined.
  const std::string id = start_test();
  EventBatch batch;
  for (int k = 0; k < 40; ++k) {
    const std::string variant = k % 2 ? "variant" : "control";
    batch.exposures.push_back({id, "nobody_" + std::to_string(k), variant, kStart + 3600});
  }
  ASSERT_TRUE(store().ingest(batch).is_ok());
  clock_.set(kStart + kSecondsPerDay);
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  expect_formattable_groups(*results);
}

TEST_F(ResultsTest, PlantedLiftGroupsAreFormattable) {
  const std::string id = start_test();
  plant(id, Plan{});
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  expect_formattable_groups(*results);
}

// A p90 metric needs n > 1.96^2 * 0.9 / 0.1 = 34.6 values per group for gbstats' interval:
// below that a quantile primary metric keeps the test running (no error) and a secondary
// one is listed in metrics_not_analysed while the others are analysed.
TEST_F(ResultsTest, QuantileMetricsTooSmallForTheirIntervalDoNotFailTheResults) {
  json r = request();
  r["success_metrics"] = {"load_time_p90", "conversion_rate", "revenue_per_user"};
  r["metric_types"] = {{"load_time_p90", "quantile"}};
  r["metric_quantiles"] = {{"load_time_p90", 0.9}};
  json secondary = request();
  secondary["metric_types"] = {{"revenue_per_user", "quantile"}};
  secondary["metric_quantiles"] = {{"revenue_per_user", 0.9}};
  for (const json& config : {r, secondary}) {
    const std::string id = start_test(config);
    EventBatch batch;
    for (int k = 0; k < 60; ++k) {
      const std::string variant = k % 2 ? "variant" : "control";
      const std::string user = id + "_" + std::to_string(k);
      batch.exposures.push_back({id, user, variant, kStart + k});
      batch.metric_events.push_back({user, "load_time_p90", 100.0 + k, kStart + k + 1});
      batch.metric_events.push_back({user, "revenue_per_user", 5.0 + k % 7, kStart + k + 1});
      if (k % 3 == 0) batch.metric_events.push_back({user, "conversion_rate", 1, kStart + k + 1});
    }
    ASSERT_TRUE(store().ingest(batch).is_ok());
    auto results = analyze_ab_test_results(store(), clock_, id);
    ASSERT_TRUE(results.is_ok()) << results.status().to_string();
    const json& out = *results;
    expect_formattable_groups(out);
    EXPECT_EQ(out["recommendation_action"], "keep_running") << out["recommendation"];
    if (config == r) {
      EXPECT_NE(out["recommendation"].get<std::string>().find("load_time_p90 cannot be tested"),
                std::string::npos)
          << out["recommendation"];
      EXPECT_EQ(out["decision_rule"], "underpowered");
    } else {
      ASSERT_EQ(out["metrics_not_analysed"].size(), 1u) << out.dump();
      EXPECT_EQ(out["metrics_not_analysed"][0]["name"], "revenue_per_user");
      ASSERT_EQ(out["metrics"].size(), 1u);
      EXPECT_EQ(out["metrics"][0]["name"], "conversion_rate");
    }
  }
}

// A percentile cap over non-zero values when nobody has any: analysed uncapped, and said so.
TEST_F(ResultsTest, ACapThatCannotBeTakenYetIsReportedNotApplied) {
  json r = request();
  r["metric_capping"] = {
      {"revenue_per_user", {{"type", "percentile"}, {"value", 0.99}, {"ignore_zeros", true}}}};
  const std::string id = start_test(r);
  EventBatch batch;
  for (int k = 0; k < 40; ++k) {
    const std::string user = "u" + std::to_string(k);
    batch.exposures.push_back({id, user, k % 2 ? "variant" : "control", kStart + k});
    if (k % 4 == 0) batch.metric_events.push_back({user, "conversion_rate", 1, kStart + k + 1});
  }
  ASSERT_TRUE(store().ingest(batch).is_ok());
  auto results = analyze_ab_test_results(store(), clock_, id);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  const json& revenue = (*results)["metrics"][1];
  ASSERT_EQ(revenue["name"], "revenue_per_user");
  EXPECT_FALSE(revenue["capping"]["applied"].get<bool>()) << revenue.dump();
  EXPECT_FALSE(revenue["capping"]["reason"].get<std::string>().empty());
}

TEST_F(ResultsTest, SliceOptionsAreCheckedAndAQuantilePrimaryIsNotSliced) {
  const std::string id = start_test();
  plant(id, Plan{});
  auto field_of = [&](const ResultsOptions& options) {
    auto results = analyze_ab_test_results(store(), clock_, id, options);
    EXPECT_FALSE(results.is_ok());
    return results.is_ok() ? std::string("<ok>") : results.status().field();
  };
  EXPECT_EQ(field_of({"a b", 5}), "slice");
  EXPECT_EQ(field_of({"", 5}), "slice");
  EXPECT_EQ(field_of({"tier", 0}), "slice_top");
  EXPECT_EQ(field_of({"tier", kMaxSliceTop + 1}), "slice_top");
  // Nobody has the attribute: one slice "" holding everyone.
  auto unknown = analyze_ab_test_results(store(), clock_, id, {"favourite_colour", 5});
  ASSERT_TRUE(unknown.is_ok()) << unknown.status().to_string();
  const json& rows = (*unknown)["slices"]["rows"];
  ASSERT_EQ(rows.size(), 1u) << rows.dump();
  EXPECT_EQ(rows[0]["value"], "");
  EXPECT_EQ(rows[0]["users"], 8000);
  EXPECT_TRUE((*analyze_ab_test_results(store(), clock_, id))["slices"].is_null());

  json quantile = request();
  quantile["metric_types"] = {{"conversion_rate", "quantile"}};
  quantile["metric_quantiles"] = {{"conversion_rate", 0.5}};
  const std::string quantile_id = start_test(quantile);
  auto refused = analyze_ab_test_results(store(), clock_, quantile_id, {"tier", 5});
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().field(), "slice");
}

}  // namespace
}  // namespace fulcrum::experiments
