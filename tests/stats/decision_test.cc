// Guardrail metrics and the ship decision (stats/decision.h): the one-sided tests against
// gbstats' published values and scipy, every decision rule, the JSON errors, and a seeded
// simulation of the false-ship rate at the non-inferiority boundary.
#include "stats/decision.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "oracle_client.h"
#include "stats/analysis.h"
#include "stats/analysis_json.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;

// gbstats packages/stats/tests/frequentist/test_tests.py, TestOneSidedGreaterTTest and
// TestOneSidedLesserTTest (setUp: stat_a = SampleMeanStatistic(sum=1396.87,
// sum_squares=52377.9767, n=3000), stat_b = (2422.7, 134698.29, 3461), alpha 0.05).
TEST(OneSidedTest, MatchesGbstatsPublishedValues) {
  auto comparison =
      compare_means({3000, 1396.87, 52377.9767}, {3461, 2422.7, 134698.29}, /*alpha=*/0.05);
  ASSERT_TRUE(comparison.is_ok());
  const EffectTest& rel = *comparison->relative;
  const EffectTest& abs = comparison->absolute;
  // gbstats tolerances: scipy's t.ppf for fractional df is accurate to ~1e-9.
  auto near = [](double actual, double expected) {
    return testing::close(actual, expected, 0) ||
           std::abs(actual - expected) <= 1e-8 * std::abs(expected);
  };
  EXPECT_TRUE(near(rel.estimate, 0.5033610858562358));
  EXPECT_TRUE(near(rel.standard_error, 0.3334122146400735));
  EXPECT_TRUE(near(abs.estimate, 0.23437666666666668));
  EXPECT_TRUE(near(abs.standard_error, 0.12983081254184736));

  EffectTest greater_rel =
      one_sided_test(rel.estimate, rel.standard_error, rel.df, 0.05, Tail::kGreater);
  EXPECT_TRUE(near(greater_rel.ci.lower, -0.045136675850396046)) << greater_rel.ci.lower;
  EXPECT_TRUE(std::isinf(greater_rel.ci.upper));
  EXPECT_TRUE(near(greater_rel.p_value, 0.06558262868467746)) << greater_rel.p_value;
  EffectTest greater_abs =
      one_sided_test(abs.estimate, abs.standard_error, abs.df, 0.05, Tail::kGreater);
  EXPECT_TRUE(near(greater_abs.ci.lower, 0.020791480063255735)) << greater_abs.ci.lower;
  EXPECT_TRUE(near(greater_abs.p_value, 0.03554272489873023)) << greater_abs.p_value;

  EffectTest lesser_rel =
      one_sided_test(rel.estimate, rel.standard_error, rel.df, 0.05, Tail::kLesser);
  EXPECT_TRUE(std::isinf(lesser_rel.ci.lower));
  EXPECT_TRUE(near(lesser_rel.ci.upper, 1.0518588475628676)) << lesser_rel.ci.upper;
  EXPECT_TRUE(near(lesser_rel.p_value, 0.9344173713153225)) << lesser_rel.p_value;
  EffectTest lesser_abs =
      one_sided_test(abs.estimate, abs.standard_error, abs.df, 0.05, Tail::kLesser);
  EXPECT_TRUE(near(lesser_abs.ci.upper, 0.44796185327007765)) << lesser_abs.ci.upper;
  EXPECT_TRUE(near(lesser_abs.p_value, 0.9644572751012698)) << lesser_abs.p_value;
}

json one_sided_cases() {
  std::mt19937_64 rng(1982);
  std::uniform_real_distribution<double> mean(-5, 5), sd(0.5, 10);
  json cases = json::array();
  for (int i = 0; i < 40; ++i) {
    json pair;
    for (const char* side : {"control", "treatment"}) {
      const auto n = testing::log_uniform_n(rng, 5, 5000);
      const double m = mean(rng), s = sd(rng);
      const double sum = m * static_cast<double>(n);
      const double sum_squares = s * s * static_cast<double>(n - 1) + sum * sum / n;
      pair[side] = {{"n", n}, {"sum", sum}, {"sum_squares", sum_squares}};
    }
    cases.push_back(pair);
  }
  return cases;
}
const bool kOneSidedRegistered = testing::register_oracle_cases("one_sided", one_sided_cases());

TEST(OneSidedTest, MatchesScipyOnRandomInputs) {
  const auto& batch = testing::oracle_batch("one_sided");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (size_t i = 0; i < batch.cases.size(); ++i) {
    const json& c = batch.cases[i];
    auto stats = [](const json& g) {
      return SampleStats{g["n"].get<std::int64_t>(), g["sum"].get<double>(),
                         g["sum_squares"].get<double>()};
    };
    auto comparison = compare_means(stats(c["control"]), stats(c["treatment"]), 0.05);
    ASSERT_TRUE(comparison.is_ok());
    const EffectTest& abs = comparison->absolute;
    EffectTest greater =
        one_sided_test(abs.estimate, abs.standard_error, abs.df, 0.05, Tail::kGreater);
    EffectTest lesser =
        one_sided_test(abs.estimate, abs.standard_error, abs.df, 0.05, Tail::kLesser);
    EXPECT_TRUE(testing::close(greater.p_value, batch.expected[i]["greater"].get<double>(), 1e-12))
        << "case " << i;
    EXPECT_TRUE(testing::close(lesser.p_value, batch.expected[i]["less"].get<double>(), 1e-12))
        << "case " << i;
  }
}

EffectTest lift(double estimate, double standard_error) {
  EffectTest test;
  test.estimate = estimate;
  test.standard_error = standard_error;
  return test;  // df = +inf (normal)
}

TEST(Guardrail, NonInferiorityIsTestedAgainstTheMarginInTheBadDirection) {
  // Higher is better, lift -0.5% +- 0.2%: above -1% at z = 2.5 (non-inferior), not below it.
  auto check = check_guardrail("balance", lift(-0.005, 0.002), true, 0.01, 0.05);
  ASSERT_TRUE(check.is_ok());
  EXPECT_TRUE(check->non_inferior);
  EXPECT_FALSE(check->harmed);
  EXPECT_NEAR(check->non_inferiority.p_value, 0.5 * std::erfc(2.5 / std::sqrt(2.0)), 1e-12);
  // Lower is better (e.g. complaint rate): +0.5% is within a 1% margin the same way.
  auto lower = check_guardrail("complaints", lift(0.005, 0.002), false, 0.01, 0.05);
  ASSERT_TRUE(lower.is_ok());
  EXPECT_TRUE(lower->non_inferior);
  EXPECT_NEAR(lower->non_inferiority.p_value, check->non_inferiority.p_value, 1e-15);
  // Lift -2% +- 0.2%: worse than the margin beyond doubt.
  auto harmed = check_guardrail("balance", lift(-0.02, 0.002), true, 0.01, 0.05);
  ASSERT_TRUE(harmed.is_ok());
  EXPECT_TRUE(harmed->harmed);
  EXPECT_FALSE(harmed->non_inferior);
  // Negative margin: the field is named.
  auto wrong = check_guardrail("balance", lift(0, 0.01), true, -0.01, 0.05);
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_EQ(wrong.status().field(), "non_inferiority_margin");
}

TEST(ShipDecision, EachRuleDecidesInOrder) {
  GuardrailCheck safe, unproven, harmed;
  safe.metric = "balance";
  safe.non_inferior = true;
  unproven.metric = "logins";
  harmed.metric = "complaints";
  harmed.harmed = true;

  ShipDecisionInput input;
  input.treatment = "variant";
  input.goals = {{"conversion", true, true}};
  input.guardrails = {safe};
  ShipDecision ship = decide_ship(input);
  EXPECT_EQ(ship.action, Action::kShip);
  EXPECT_EQ(ship.rule, DecisionRule::kGoalWinsGuardrailsHold);
  EXPECT_EQ(ship.metric, "conversion");

  input.guardrails = {safe, unproven};
  ShipDecision wait = decide_ship(input);
  EXPECT_EQ(wait.action, Action::kKeepRunning);
  EXPECT_EQ(wait.rule, DecisionRule::kGuardrailNotNonInferior);
  EXPECT_EQ(wait.metric, "logins");

  input.guardrails = {safe, unproven, harmed};
  ShipDecision stop = decide_ship(input);
  EXPECT_EQ(stop.action, Action::kStop);
  EXPECT_EQ(stop.rule, DecisionRule::kGuardrailHarmed);
  EXPECT_EQ(stop.metric, "complaints");

  input.goals.push_back({"revenue", true, false});
  EXPECT_EQ(decide_ship(input).rule, DecisionRule::kGoalHarmed);
  EXPECT_EQ(decide_ship(input).metric, "revenue");

  input.sample_ratio_mismatch = true;
  EXPECT_EQ(decide_ship(input).rule, DecisionRule::kSampleRatioMismatch);

  ShipDecisionInput null_result;
  null_result.goals = {{"conversion", false, true}};
  EXPECT_EQ(decide_ship(null_result).rule, DecisionRule::kUnderpowered);
  EXPECT_EQ(decide_ship(null_result).action, Action::kKeepRunning);
  null_result.primary_powered = true;
  EXPECT_EQ(decide_ship(null_result).rule, DecisionRule::kPoweredNoEffect);
  EXPECT_EQ(decide_ship(null_result).action, Action::kStop);
}

// A goal that clearly wins and a guardrail whose true relative lift is `guardrail_lift`.
AnalysisInput goal_and_guardrail(std::mt19937_64& rng, int n, double guardrail_lift,
                                 double margin) {
  AnalysisInput input;
  MetricInput goal, guard;
  goal.name = "conversion";
  guard.name = "balance";
  guard.type = MetricType::kContinuous;
  guard.role = MetricRole::kGuardrail;
  guard.non_inferiority_margin = margin;
  std::normal_distribution<double> noise(0, 20);
  for (const char* group : {"control", "variant"}) {
    const bool treated = std::string(group) == "variant";
    std::binomial_distribution<int> conversions(n, treated ? 0.15 : 0.10);
    MetricGroupInput converted;
    converted.n = n;
    converted.sum = static_cast<double>(conversions(rng));
    goal.groups[group] = converted;
    const double mean = treated ? 100 * (1 + guardrail_lift) : 100;
    MetricGroupInput g;
    g.n = n;
    for (int i = 0; i < n; ++i) {
      const double y = mean + noise(rng);
      g.sum += y;
      g.sum_squares += y * y;
    }
    guard.groups[group] = g;
  }
  input.metrics = {goal, guard};
  return input;
}

// Under the null of the non-inferiority test (the guardrail is exactly `margin` worse) a
// winning goal must not ship more than alpha of the time; with no true harm it ships often.
TEST(ShipDecision, FalseShipRateAtTheMarginStaysAtAlpha) {
  std::mt19937_64 rng(20240529);
  const int trials = 1000, n = 2000;
  const double margin = 0.02, alpha = 0.05;
  int ships_at_boundary = 0, ships_without_harm = 0;
  for (int t = 0; t < trials; ++t) {
    auto boundary = analyze(goal_and_guardrail(rng, n, -margin, margin));
    ASSERT_TRUE(boundary.is_ok()) << boundary.status().message();
    ships_at_boundary += boundary->decision.action == Action::kShip;
    auto safe = analyze(goal_and_guardrail(rng, n, 0, margin));
    ASSERT_TRUE(safe.is_ok());
    ships_without_harm += safe->decision.action == Action::kShip;
  }
  const double rate = static_cast<double>(ships_at_boundary) / trials;
  const double mc_error = std::sqrt(alpha * (1 - alpha) / trials);
  std::printf(
      "false-ship rate at the margin %.4f (alpha %.2f, MC sd %.4f); ship rate with no "
      "harm %.4f\n",
      rate, alpha, mc_error, static_cast<double>(ships_without_harm) / trials);
  EXPECT_LE(rate, alpha + 3 * mc_error);
  // Power at n = 2000, se of the lift ~0.0063: P(Z > 1.645 - 0.02/0.0063) ~ 0.94.
  EXPECT_GT(ships_without_harm, trials * 8 / 10);
}

TEST(ShipDecision, AnalysisReportsGuardrailsAndTheDecidingRule) {
  const json input = json::parse(R"({
    "metrics": [
      {"name": "conversion", "groups": {"control": {"n": 10000, "sum": 1000},
                                        "variant": {"n": 10000, "sum": 1200}}},
      {"name": "complaints", "type": "binomial", "role": "guardrail", "higher_is_better": false,
       "non_inferiority_margin": 0.05,
       "groups": {"control": {"n": 10000, "sum": 300}, "variant": {"n": 10000, "sum": 420}}}
    ]})");
  auto parsed = analysis_input_from_json(input);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
  auto output = analyze(*parsed);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  EXPECT_EQ(output->decision.rule, DecisionRule::kGuardrailHarmed);
  EXPECT_EQ(output->recommendation.action, Action::kStop);
  EXPECT_FALSE(output->winner.has_value());
  const json doc = analysis_output_to_json(*output);
  EXPECT_EQ(doc["recommendation"]["rule"], "guardrail_harmed");
  EXPECT_EQ(doc["recommendation"]["decided_by_metric"], "complaints");
  EXPECT_EQ(doc["metrics"][1]["role"], "guardrail");
  EXPECT_EQ(doc["metrics"][1]["groups"]["variant"]["guardrail"]["harmed"], true);
  // Guardrails stay out of the correction family: adjusted == raw.
  EXPECT_EQ(doc["metrics"][1]["groups"]["variant"]["adjusted_p_value"],
            doc["metrics"][1]["groups"]["variant"]["p_value"]);
}

TEST(ShipDecision, BadGuardrailConfigurationNamesTheField) {
  auto error_field = [](const char* text) {
    auto parsed = parse_analysis_input(text);
    if (!parsed.is_ok()) return parsed.status().field();
    auto output = analyze(*parsed);
    return output.is_ok() ? std::string("(accepted)") : output.status().field();
  };
  const char* groups =
      R"("groups": {"control": {"n": 100, "sum": 10}, "variant": {"n": 100, "sum": 12}})";
  EXPECT_EQ(
      error_field((std::string(R"({"metrics": [{"name": "a", )") + groups +
                   R"(}, {"name": "b", "role": "guardrail", "non_inferiority_margin": -0.01, )" +
                   groups + "}]}")
                      .c_str()),
      "metrics[1].non_inferiority_margin");
  EXPECT_EQ(
      error_field((std::string(R"({"metrics": [{"name": "a", )") + groups +
                   R"(}, {"name": "b", "role": "secondary", "non_inferiority_margin": 0.01, )" +
                   groups + "}]}")
                      .c_str()),
      "metrics[1].non_inferiority_margin");
  EXPECT_EQ(error_field((std::string(R"({"metrics": [{"name": "a", "role": "guardrail", )") +
                         groups + "}]}")
                            .c_str()),
            "metrics[0].role");
  EXPECT_EQ(
      error_field(
          (std::string(R"({"metrics": [{"name": "a", "role": "boss", )") + groups + "}]}").c_str()),
      "metrics[0].role");
}

}  // namespace
}  // namespace fulcrum::stats
