// GET /ab-tests/{id}/results for a capped revenue metric, a p90 metric and a slice table, and
// with ?cupac=true for CUPAC beside plain CUPED on a capped metric, from events ingested
// through a real SQLite store, against numbers that tests/experiments/results_oracle.py and
// cupac_oracle.py recompute from the same raw events with numpy/scipy/statsmodels (never
// against numbers this code printed).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

#include "../support/python_oracle.h"
#include "../support/sqlite_store_fixture.h"
#include "experiments/service.h"

namespace fulcrum::experiments {
using testing_support::SqliteStoreFixture;
namespace {

using json = nlohmann::json;

constexpr UnixSeconds kStart = 1'700'006'400;

::testing::AssertionResult near_relative(double actual, double expected, double tolerance,
                                         double scale = 0) {
  const double allowed = tolerance * std::max(std::abs(expected), scale);
  if (std::abs(actual - expected) <= allowed) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "actual " << actual << " vs expected " << expected << " (allowed " << allowed << ")";
}

json run_oracle(const json& request, const std::string& script = "results_oracle.py") {
  return testing_support::run_python_oracle("tests/experiments/" + script, request);
}

class ResultsOracleTest : public SqliteStoreFixture {
 protected:
  ManualClock clock_{kStart};
};

TEST_F(ResultsOracleTest, CappedQuantileAndSlicedResultsMatchNumpyAndScipy) {
  auto created = create_ab_test(store(), clock_, json::parse(R"({
    "test_name": "Card offer", "feature_name": "card_offer",
    "success_metrics": ["revenue", "conversion_rate", "load_time_p90"],
    "metric_types": {"revenue": "continuous", "load_time_p90": "quantile"},
    "metric_quantiles": {"load_time_p90": 0.9},
    "lower_is_better": ["load_time_p90"],
    "metric_capping": {"revenue": {"type": "percentile", "value": 0.95}},
    "test_groups": {"control": {}, "variant": {}},
    "traffic_allocation": {"control": 0.5, "variant": 0.5}})"));
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  const std::string id = created->test_id;
  ASSERT_TRUE(start_ab_test(store(), clock_, id).is_ok());

  // Heavy-tailed revenue (60% of users have none; the variant's spenders spend ~15% more),
  // conversion = any revenue, a lognormal load time (the variant ~8% slower at p90), and a
  // country per user: "other" is a real value that ranks in the top 3, and 5% of the users
  // have no stored user (slice ""). Revenue before exposure must not count.
  std::mt19937_64 rng(15);
  std::bernoulli_distribution spends(0.4), split(0.5), stored(0.95);
  std::lognormal_distribution<double> control_spend(3.0, 1.3), variant_spend(3.14, 1.3);
  std::lognormal_distribution<double> control_time(5.0, 0.4), variant_time(5.08, 0.4);
  std::discrete_distribution<int> country_of({30, 25, 20, 10, 8, 7});
  const char* countries[] = {"DE", "other", "US", "FR", "IT", "ES"};
  EventBatch batch;
  json exposures = json::array(), countries_json = json::object();
  json events = {{"revenue", json::array()},
                 {"conversion_rate", json::array()},
                 {"load_time_p90", json::array()}};
  auto add_event = [&](const std::string& user, const std::string& metric, double value,
                       UnixSeconds at) {
    batch.metric_events.push_back({user, metric, value, at});
    events[metric].push_back({user, value, at});
  };
  for (int k = 0; k < 2400; ++k) {
    const bool variant = k % 2 == 1;
    const std::string user = "user_" + std::to_string(k);
    const std::string group = variant ? "variant" : "control";
    const UnixSeconds exposed = kStart + (k % 5) * kSecondsPerDay + 600;
    batch.exposures.push_back({id, user, group, exposed});
    exposures.push_back({user, group, exposed});
    if (stored(rng)) {
      const std::string country = countries[country_of(rng)];
      batch.users.push_back(
          User{user, Tier::kFree, kStart - 100 * kSecondsPerDay, country, "", {}});
      countries_json[user] = country;
    }
    add_event(user, "revenue", 1000.0, exposed - kSecondsPerDay);  // before exposure
    if (spends(rng)) {
      const double spend = variant ? variant_spend(rng) : control_spend(rng);
      if (split(rng)) {
        add_event(user, "revenue", spend * 0.25, exposed + 60);
        add_event(user, "revenue", spend * 0.75, exposed + 2 * kSecondsPerDay);
      } else {
        add_event(user, "revenue", spend, exposed + 3600);
      }
      add_event(user, "conversion_rate", 1.0, exposed + 3600);
    }
    add_event(user, "load_time_p90", variant ? variant_time(rng) : control_time(rng), exposed + 5);
  }
  ASSERT_TRUE(store().ingest(batch).is_ok());
  clock_.set(kStart + 6 * kSecondsPerDay);

  ResultsOptions options;
  options.slice = "country";
  options.slice_top = 3;
  options.post_stratify = true;
  auto results = analyze_ab_test_results(store(), clock_, id, options);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  const json& r = *results;

  const json expected = run_oracle({{"exposures", exposures},
                                    {"events", events},
                                    {"countries", countries_json},
                                    {"cap_level", 0.95},
                                    {"quantile", 0.9},
                                    {"slice_top", 3},
                                    {"alpha", 0.05}});
  ASSERT_TRUE(expected.is_object()) << "the python oracle failed";
  constexpr double kExact = 1e-9;  // same arithmetic, other summation order
  constexpr double kT = 1e-7;      // t quantiles and tails (scipy's t.isf ~1e-9)

  // Capped revenue decides; the uncapped comparison is beside it.
  const json& revenue = r["metrics"][0];
  ASSERT_EQ(revenue["name"], "revenue");
  ASSERT_TRUE(revenue["capping"]["applied"].get<bool>()) << revenue.dump();
  EXPECT_TRUE(near_relative(revenue["capping"]["cap"], expected["cap"], kExact));
  EXPECT_EQ(revenue["capping"]["users_capped"], expected["users_capped"]);
  EXPECT_GT(expected["users_capped"]["control"].get<int>(), 10);
  const json& capped = expected["revenue_capped"];
  EXPECT_TRUE(near_relative(revenue["groups"]["control"]["mean"], capped["control_mean"], kExact));
  EXPECT_TRUE(near_relative(revenue["groups"]["variant"]["mean"], capped["variant_mean"], kExact));
  EXPECT_TRUE(near_relative(revenue["groups"]["variant"]["absolute"]["estimate"],
                            capped["estimate"], kExact));
  const double width = capped["ci"][1].get<double>() - capped["ci"][0].get<double>();
  EXPECT_TRUE(
      near_relative(revenue["groups"]["variant"]["absolute"]["ci"][0], capped["ci"][0], kT, width));
  EXPECT_TRUE(
      near_relative(revenue["groups"]["variant"]["absolute"]["ci"][1], capped["ci"][1], kT, width));
  EXPECT_TRUE(near_relative(revenue["groups"]["variant"]["p_value"], capped["p_value"], kT));
  const json& uncapped = expected["revenue_uncapped"];
  const json& beside = revenue["capping"]["uncapped"];
  EXPECT_TRUE(near_relative(beside["control"]["mean"], uncapped["control_mean"], kExact));
  EXPECT_TRUE(near_relative(beside["variant"]["mean"], uncapped["variant_mean"], kExact));
  EXPECT_TRUE(near_relative(beside["variant"]["p_value"], uncapped["p_value"], kT));
  // Capping cuts the variance of the heavy tail.
  EXPECT_LT(revenue["groups"]["control"]["variance"].get<double>(),
            beside["control"]["variance"].get<double>() / 2);

  const json& conversion = r["metrics"][1];
  EXPECT_TRUE(near_relative(conversion["groups"]["control"]["mean"],
                            expected["conversion"]["control_rate"], kExact));
  EXPECT_TRUE(near_relative(conversion["groups"]["variant"]["p_value"],
                            expected["conversion"]["p_value"], kT));

  // The p90 metric: gbstats' quantile statistic and the delta-method difference.
  const json& latency = r["metrics"][2];
  const json& q = expected["latency"];
  ASSERT_EQ(latency["type"], "quantile");
  EXPECT_EQ(latency["quantile"], 0.9);
  EXPECT_TRUE(near_relative(latency["groups"]["control"]["mean"], q["control_mean"], kExact));
  EXPECT_TRUE(near_relative(latency["groups"]["variant"]["mean"], q["variant_mean"], kExact));
  EXPECT_TRUE(
      near_relative(latency["groups"]["control"]["variance"], q["control_variance"], kExact));
  EXPECT_TRUE(
      near_relative(latency["groups"]["variant"]["variance"], q["variant_variance"], kExact));
  const double q_width = q["ci"][1].get<double>() - q["ci"][0].get<double>();
  EXPECT_TRUE(
      near_relative(latency["groups"]["variant"]["absolute"]["ci"][0], q["ci"][0], kT, q_width));
  EXPECT_TRUE(
      near_relative(latency["groups"]["variant"]["absolute"]["ci"][1], q["ci"][1], kT, q_width));
  EXPECT_TRUE(near_relative(latency["groups"]["variant"]["p_value"], q["p_value"], kT));
  EXPECT_TRUE(
      near_relative(latency["groups"]["variant"]["relative"]["estimate"], q["relative"], kExact));

  // Holm over the three metrics' comparisons.
  for (int m = 0; m < 3; ++m) {
    EXPECT_TRUE(near_relative(r["metrics"][m]["groups"]["variant"]["adjusted_p_value"],
                              expected["holm"][m], kT))
        << r["metrics"][m]["name"];
  }

  // The slice table: DE, the real value "other", US, then the merged rest.
  const json& table = r["slices"];
  ASSERT_TRUE(table.is_object()) << r.dump();
  EXPECT_EQ(table["attribute"], "country");
  EXPECT_TRUE(near_relative(table["capped_at"], expected["cap"], kExact));
  const json& rows = table["rows"];
  ASSERT_EQ(rows.size(), expected["slices"].size()) << rows.dump();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const json& want = expected["slices"][i];
    EXPECT_EQ(rows[i]["value"], want["value"]) << i;
    EXPECT_EQ(rows[i]["other"], want["other"]) << i;
    EXPECT_EQ(rows[i]["users"], want["users"]) << i;
    EXPECT_TRUE(near_relative(rows[i]["groups"]["control"]["mean"], want["control_mean"], kExact))
        << i;
    EXPECT_TRUE(near_relative(rows[i]["groups"]["variant"]["p_value"], want["p_value"], kT)) << i;
    EXPECT_TRUE(near_relative(rows[i]["groups"]["variant"]["adjusted_p_value"],
                              want["adjusted_p_value"], kT))
        << i;
  }
  // Post-stratified by every country (numpy, from gbstats' formulas, on the raw events).
  const json& stratified = table["post_stratification"];
  ASSERT_TRUE(stratified.is_object()) << table.dump();
  ASSERT_FALSE(stratified.contains("unavailable")) << stratified.dump();
  const json& want_stratified = expected["post_stratified"];
  EXPECT_EQ(stratified["strata_used"], want_stratified["strata_used"]);
  EXPECT_EQ(stratified["strata_merged"], want_stratified["strata_merged"]);
  const json& variant_stratified = stratified["treatments"][0];
  EXPECT_EQ(variant_stratified["group"], "variant");
  EXPECT_TRUE(near_relative(variant_stratified["absolute"]["estimate"], want_stratified["estimate"],
                            kExact));
  EXPECT_TRUE(near_relative(variant_stratified["absolute"]["standard_error"], want_stratified["se"],
                            kExact));
  std::printf(
      "post-stratified by country: %d strata, estimate %.4f se %.4f (unstratified se "
      "%.4f)\n",
      stratified["strata_used"].get<int>(),
      variant_stratified["absolute"]["estimate"].get<double>(),
      variant_stratified["absolute"]["standard_error"].get<double>(),
      variant_stratified["unstratified_standard_error"].get<double>());
  std::printf(
      "capped revenue: cap %.2f, users capped %d + %d, control variance %.1f capped vs %.1f "
      "uncapped, p %.4f capped vs %.4f uncapped; p90 load time %.1f vs %.1f (p %.4f); slices "
      "by country:",
      revenue["capping"]["cap"].get<double>(),
      revenue["capping"]["users_capped"]["control"].get<int>(),
      revenue["capping"]["users_capped"]["variant"].get<int>(),
      revenue["groups"]["control"]["variance"].get<double>(),
      beside["control"]["variance"].get<double>(),
      revenue["groups"]["variant"]["p_value"].get<double>(),
      beside["variant"]["p_value"].get<double>(),
      latency["groups"]["control"]["mean"].get<double>(),
      latency["groups"]["variant"]["mean"].get<double>(),
      latency["groups"]["variant"]["p_value"].get<double>());
  for (const json& row : rows) {
    std::printf(" %s%s n=%d p_adj=%.3f;", row["value"].get<std::string>().c_str(),
                row["other"].get<bool>() ? "(rest)" : "", row["users"].get<int>(),
                row["groups"]["variant"]["adjusted_p_value"].get<double>());
  }
  std::printf("\n");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1]["value"], "other");
  EXPECT_FALSE(rows[1]["other"].get<bool>());
  EXPECT_EQ(rows[3]["value"], "other");
  EXPECT_TRUE(rows[3]["other"].get<bool>());
}

TEST_F(ResultsOracleTest, CupacAndCappedCupedMatchNumpy) {
  auto created = create_ab_test(store(), clock_, json::parse(R"({
    "test_name": "Spend nudge", "feature_name": "spend_nudge",
    "success_metrics": ["revenue"], "metric_types": {"revenue": "continuous"},
    "metric_capping": {"revenue": {"type": "percentile", "value": 0.98}},
    "test_groups": {"control": {}, "variant": {}},
    "traffic_allocation": {"control": 0.5, "variant": 0.5}})"));
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  const std::string id = created->test_id;
  ASSERT_TRUE(start_ab_test(store(), clock_, id).is_ok());

  // A user's revenue after exposure follows their activity before it (sessions, payments)
  // and a spend level that their revenue before exposure shows only for some, at 1-50 days
  // back (so the 14-day CUPED window misses part of it); the variant lifts spend 8%.
  std::mt19937_64 rng(77);
  std::gamma_distribution<double> activity_level(2.0, 1.0), spend_level(1.5, 20.0);
  std::bernoulli_distribution shows_spend(0.6), coin(0.5);
  std::uniform_int_distribution<int> days_back(1, 50), hour(0, 23);
  std::normal_distribution<double> noise;
  EventBatch batch;
  batch.features.push_back(Feature{"budgeting", Tier::kFree, 0, 0, "money"});
  json exposures = json::array(), revenue = json::array(), sessions = json::array(),
       payments = json::array(), usage = json::array(), paywall = json::array();
  for (int k = 0; k < 1600; ++k) {
    const std::string user = "cu_" + std::to_string(k);
    const std::string group = k % 2 == 1 ? "variant" : "control";
    const UnixSeconds exposed =
        kStart + 60 * kSecondsPerDay + (k % 5) * kSecondsPerDay + (k % 7) * 3600 + 17;
    batch.exposures.push_back({id, user, group, exposed});
    exposures.push_back({user, group, exposed});
    const double activity = activity_level(rng), spend = spend_level(rng);
    const UnixSeconds exposure_day = exposed / kSecondsPerDay * kSecondsPerDay;
    for (int d = 1; d <= 30; ++d) {  // day 29-30 back are outside the 28-day window
      const UnixSeconds day = exposure_day - d * kSecondsPerDay;
      if (std::bernoulli_distribution(std::min(0.95, 0.15 * activity))(rng)) {
        const UnixSeconds at = day + hour(rng) * 3600;
        const auto duration = static_cast<std::int32_t>(60 + 120 * activity * coin(rng));
        batch.sessions.push_back({user, at, duration});
        sessions.push_back({user, at, duration});
        const int count = 1 + static_cast<int>(activity);
        batch.feature_usage.push_back({user, "budgeting", at + 5, count});
        usage.push_back({user, at + 5, count});
      }
    }
    if (coin(rng)) {  // a payment, sometimes failed, some days before the exposure day
      const UnixSeconds at = exposure_day - days_back(rng) % 27 * kSecondsPerDay - 3600;
      const bool succeeded = coin(rng);
      const auto amount = static_cast<std::int64_t>(100 * spend);
      batch.payments.push_back({user, at, succeeded, amount});
      payments.push_back({user, at, succeeded, amount});
    }
    if (activity < 1) {
      const UnixSeconds at = exposure_day - 2 * kSecondsPerDay + 60;
      batch.paywall_hits.push_back({user, "budgeting", at});
      paywall.push_back({user, at});
    }
    auto add_revenue = [&](double value, UnixSeconds at) {
      batch.metric_events.push_back({user, "revenue", value, at});
      revenue.push_back({user, value, at});
    };
    if (shows_spend(rng))
      add_revenue(spend * (0.8 + 0.4 * coin(rng)), exposed - days_back(rng) * kSecondsPerDay);
    const double lift = group == "variant" ? 1.08 : 1.0;
    const double post = std::max(0.0, spend * lift + 6 * activity + 4 * noise(rng));
    add_revenue(post, exposed + 3600);
  }
  ASSERT_TRUE(store().ingest(batch).is_ok());
  clock_.set(kStart + 70 * kSecondsPerDay);

  ResultsOptions options;
  options.cupac = true;
  auto results = analyze_ab_test_results(store(), clock_, id, options);
  ASSERT_TRUE(results.is_ok()) << results.status().to_string();
  const json& r = *results;
  const json expected = run_oracle({{"exposures", exposures},
                                    {"revenue", revenue},
                                    {"sessions", sessions},
                                    {"payments", payments},
                                    {"usage", usage},
                                    {"paywall_hits", paywall},
                                    {"cap_level", 0.98},
                                    {"alpha", 0.05}},
                                   "cupac_oracle.py");
  ASSERT_TRUE(expected.is_object()) << "the python oracle failed";
  constexpr double kExact = 1e-9;
  constexpr double kFit = 1e-7;  // normal equations vs numpy's solve on explicit rows
  constexpr double kT = 1e-7;

  // The capped metric keeps CUPED, on the covariate capped with the metric's cap.
  const json& metric = r["metrics"][0];
  EXPECT_TRUE(metric["cuped_applied"].get<bool>());
  EXPECT_TRUE(near_relative(metric["capping"]["cap"], expected["cap"], kExact));
  EXPECT_TRUE(near_relative(metric["cuped_theta"], expected["cuped"]["theta"], kExact));
  EXPECT_TRUE(
      near_relative(metric["groups"]["variant"]["mean"], expected["cuped"]["means"][1], kExact));
  EXPECT_TRUE(
      near_relative(metric["groups"]["variant"]["p_value"], expected["cuped"]["p_value"], kT));

  ASSERT_EQ(r["cupac"]["metrics"].size(), 1u) << r["cupac"].dump();
  const json& cupac = r["cupac"]["metrics"][0];
  ASSERT_FALSE(cupac.contains("unavailable")) << cupac.dump();
  EXPECT_EQ(cupac["metric"], "revenue");
  EXPECT_EQ(cupac["users"], expected["users"]);
  EXPECT_TRUE(near_relative(cupac["capped_at"], expected["cap"], kExact));
  EXPECT_TRUE(near_relative(cupac["cross_validated_r2"], expected["r2"], kFit));
  const json& variant = cupac["treatments"][0];
  EXPECT_EQ(variant["group"], "variant");
  EXPECT_TRUE(
      near_relative(variant["unadjusted"]["standard_error"], expected["plain"]["se"], kExact));
  EXPECT_TRUE(near_relative(variant["cuped"]["estimate"], expected["cuped"]["estimate"], kExact,
                            expected["cuped"]["se"]));
  EXPECT_TRUE(near_relative(variant["cuped"]["standard_error"], expected["cuped"]["se"], kExact));
  EXPECT_TRUE(near_relative(variant["cupac"]["estimate"], expected["cupac"]["estimate"], kFit,
                            expected["cupac"]["se"]));
  EXPECT_TRUE(near_relative(variant["cupac"]["standard_error"], expected["cupac"]["se"], kFit));
  EXPECT_TRUE(near_relative(variant["cupac"]["p_value"], expected["cupac"]["p_value"], 1e-5));
  EXPECT_TRUE(
      near_relative(variant["cupac"]["variance_reduction"], expected["cupac_reduction"], kFit));
  // The activity explains what the pre-period revenue alone cannot.
  EXPECT_GT(variant["cupac"]["variance_reduction"].get<double>(),
            variant["cuped"]["variance_reduction"].get<double>() + 0.1);
  std::printf(
      "capped revenue (cap %.2f): variance cut by CUPED %.3f, by CUPAC %.3f (out-of-fold "
      "R^2 %.3f); se %.4f unadjusted, %.4f CUPED, %.4f CUPAC\n",
      cupac["capped_at"].get<double>(), variant["cuped"]["variance_reduction"].get<double>(),
      variant["cupac"]["variance_reduction"].get<double>(),
      cupac["cross_validated_r2"].get<double>(),
      variant["unadjusted"]["standard_error"].get<double>(),
      variant["cuped"]["standard_error"].get<double>(),
      variant["cupac"]["standard_error"].get<double>());
}

}  // namespace
}  // namespace fulcrum::experiments
