// Thompson-sampling bandit weights (stats/bandit.h): numpy Monte Carlo as the oracle for the
// integrals, gbstats' minimum-weight identities, the analysis wiring, and a seeded simulation
// of cumulative regret against uniform allocation.
#include "stats/bandit.h"

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

constexpr int kDraws = 200000;

json arms_json(const std::vector<SampleStats>& arms) {
  json out = json::array();
  for (const auto& a : arms)
    out.push_back({{"n", a.n}, {"sum", a.sum}, {"sum_squares", a.sum_squares}});
  return out;
}

std::vector<std::vector<SampleStats>> bandit_arm_sets() {
  return {
      // Four arms with different sizes and spreads.
      {{100, 270, 848.79}, {120, 300, 869}, {200, 540, 1615.59}, {220, 640, 2071}},
      // gbstats TestBanditMinVariationWeightFloor: one dominant arm.
      {{1000, 10, 2000}, {1000, 20, 2000}, {1000, 30, 2000}, {1000, 300, 20000}},
      // Close binomial arms (conversions, sum_squares = sum).
      {{5000, 500, 500}, {5000, 520, 520}, {5000, 545, 545}},
      {{800, 120, 120}, {820, 118, 118}},
  };
}

json bandit_cases() {
  json cases = json::array();
  int seed = 1;
  for (const auto& arms : bandit_arm_sets()) {
    cases.push_back({{"arms", arms_json(arms)}, {"seed", seed++}, {"draws", kDraws}});
  }
  return cases;
}
const bool kBanditRegistered = testing::register_oracle_cases("bandit", bandit_cases());

TEST(Bandit, IntegralsMatchMonteCarloOfTheSamePosteriors) {
  const auto& batch = testing::oracle_batch("bandit");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  const auto sets = bandit_arm_sets();
  for (size_t c = 0; c < sets.size(); ++c) {
    BanditSettings settings;
    settings.min_weight = 0;
    auto result = bandit_weights(sets[c], settings);
    ASSERT_TRUE(result.is_ok());
    for (size_t i = 0; i < sets[c].size(); ++i) {
      const double best = batch.expected[c]["best"][i].get<double>();
      const double top_two = batch.expected[c]["top_two"][i].get<double>();
      // 5 Monte Carlo standard deviations (+ a floor for probabilities near 0 or 1).
      const double tolerance = 5 * std::sqrt(best * (1 - best) / kDraws) + 2e-5;
      EXPECT_NEAR(result->best_arm_probability[i], best, tolerance) << "case " << c << " arm " << i;
      EXPECT_NEAR(result->weights[i], top_two, 5 * std::sqrt(0.25 / kDraws) + 2e-5)
          << "case " << c << " arm " << i;
    }
  }
}

// gbstats TestBanditMinVariationWeightFloor: the floor is additive on the simplex, too large
// a floor is uniform, a negative floor is none.
TEST(Bandit, MinimumWeightFollowsGbstats) {
  const auto arms = bandit_arm_sets()[1];
  BanditSettings pure;
  pure.min_weight = 0;
  auto w = bandit_weights(arms, pure);
  ASSERT_TRUE(w.is_ok());
  BanditSettings floored;
  floored.min_weight = 0.1;
  auto p = bandit_weights(arms, floored);
  ASSERT_TRUE(p.is_ok());
  double total = 0;
  for (size_t i = 0; i < arms.size(); ++i) {
    EXPECT_GE(p->weights[i], 0.1 - 1e-9);
    EXPECT_NEAR(p->weights[i], 0.1 + (1 - 4 * 0.1) * w->weights[i], 1e-12);
    total += p->weights[i];
  }
  EXPECT_NEAR(total, 1, 1e-12);
  floored.min_weight = 0.5;
  auto uniform = bandit_weights(arms, floored);
  ASSERT_TRUE(uniform.is_ok());
  for (double v : uniform->weights) EXPECT_DOUBLE_EQ(v, 0.25);
  floored.min_weight = -0.3;
  auto negative = bandit_weights(arms, floored);
  ASSERT_TRUE(negative.is_ok());
  for (size_t i = 0; i < arms.size(); ++i) EXPECT_DOUBLE_EQ(negative->weights[i], w->weights[i]);
  // The default floor is 1%.
  auto defaulted = bandit_weights(arms, BanditSettings{});
  ASSERT_TRUE(defaulted.is_ok());
  for (double v : defaulted->weights) EXPECT_GE(v, 0.01 - 1e-12);
}

// Seeded simulation: 4 Bernoulli arms (10%, 11%, 12%, 15%), 30 daily batches of 800 new users
// allocated by the current weights (users already in keep their arm), weights recomputed from
// all data after each batch, for top-two Thompson sampling (the default: it keeps exploring
// the runner-up to identify the best arm) and plain Thompson sampling.
struct BanditRun {
  double regret = 0;
  bool picked_best = false;
  double final_best_probability = 0;
};

BanditRun simulate_bandit(std::mt19937_64& rng, bool top_two) {
  const std::vector<double> rates = {0.10, 0.11, 0.12, 0.15};
  std::vector<SampleStats> arms(rates.size());
  std::vector<double> weights(rates.size(), 1.0 / rates.size());
  BanditSettings settings;
  settings.top_two = top_two;
  BanditRun run;
  for (int period = 0; period < 30; ++period) {
    std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
    for (int u = 0; u < 800; ++u) {
      const size_t arm = pick(rng);
      const double converted = std::bernoulli_distribution(rates[arm])(rng) ? 1 : 0;
      arms[arm].n += 1;
      arms[arm].sum += converted;
      arms[arm].sum_squares += converted;
      run.regret += 0.15 - rates[arm];
    }
    auto updated = bandit_weights(arms, settings);
    if (!updated.is_ok()) continue;  // an arm with fewer than 2 users
    if (updated->enough_units) weights = updated->weights;
    const auto& best = updated->best_arm_probability;
    run.final_best_probability = best[3];
    run.picked_best = std::max_element(best.begin(), best.end()) - best.begin() == 3;
  }
  return run;
}

TEST(Bandit, SimulatedRegretIsWellBelowUniformAllocation) {
  std::mt19937_64 rng(8675309);
  const int runs = 10;
  const double uniform_regret = 30 * 800 * (0.15 - (0.10 + 0.11 + 0.12 + 0.15) / 4);
  double regret[2] = {0, 0}, best_probability[2] = {0, 0};
  int picked[2] = {0, 0};
  for (int run = 0; run < runs; ++run) {
    for (int top_two = 0; top_two < 2; ++top_two) {
      const BanditRun result = simulate_bandit(rng, top_two == 1);
      regret[top_two] += result.regret / runs;
      best_probability[top_two] += result.final_best_probability / runs;
      picked[top_two] += result.picked_best;
    }
  }
  std::printf(
      "uniform regret %.0f; top-two Thompson %.0f (%.2f of uniform, best arm picked in "
      "%d/%d, mean P(best) %.3f); plain Thompson %.0f (%.2f, %d/%d, %.3f)\n",
      uniform_regret, regret[1], regret[1] / uniform_regret, picked[1], runs, best_probability[1],
      regret[0], regret[0] / uniform_regret, picked[0], runs, best_probability[0]);
  EXPECT_LT(regret[1], 0.7 * uniform_regret);
  EXPECT_LT(regret[0], 0.4 * uniform_regret);
  EXPECT_EQ(picked[1], runs);
  EXPECT_GT(best_probability[1], 0.95);
}

TEST(Bandit, AnalysisReportsWeightsAndRejectsMetricsItCannotHandle) {
  json doc = json::parse(R"({"bandit": {"top_two": true, "min_weight": 0.02},
    "metrics": [{"name": "conversion", "groups": {
      "control": {"n": 5000, "sum": 500}, "a": {"n": 5000, "sum": 520},
      "b": {"n": 5000, "sum": 600}}}]})");
  auto input = analysis_input_from_json(doc);
  ASSERT_TRUE(input.is_ok()) << input.status().message();
  auto output = analyze(*input);
  ASSERT_TRUE(output.is_ok()) << output.status().message();
  ASSERT_TRUE(output->bandit.has_value());
  const json out = analysis_output_to_json(*output);
  double total = 0;
  for (const auto& [group, weight] : out["bandit"]["weights"].items()) {
    EXPECT_GE(weight.get<double>(), 0.02 - 1e-12) << group;
    total += weight.get<double>();
  }
  EXPECT_NEAR(total, 1, 1e-12);
  EXPECT_GT(out["bandit"]["weights"]["b"].get<double>(),
            out["bandit"]["weights"]["a"].get<double>());
  EXPECT_GT(out["bandit"]["best_arm_probability"]["b"].get<double>(), 0.99);

  json ratio = doc;
  ratio["metrics"][0] = json::parse(R"({"name": "revenue_per_session", "type": "ratio", "groups": {
      "control": {"n": 100, "sum": 50, "sum_squares": 40, "denominator_sum": 200,
                  "denominator_sum_squares": 500, "ratio_cross_sum": 110},
      "a": {"n": 100, "sum": 55, "sum_squares": 45, "denominator_sum": 210,
            "denominator_sum_squares": 520, "ratio_cross_sum": 120}}})");
  auto rejected = analysis_input_from_json(ratio);
  if (rejected.is_ok()) {
    auto analysed = analyze(*rejected);
    ASSERT_FALSE(analysed.is_ok());
    EXPECT_EQ(analysed.status().field(), "metrics[0].type");
  } else {
    EXPECT_EQ(rejected.status().field(), "metrics[0].type");
  }
  doc["bandit"]["min_weight"] = 0.6;
  auto too_big = analysis_input_from_json(doc);
  ASSERT_FALSE(too_big.is_ok());
  EXPECT_EQ(too_big.status().field(), "bandit.min_weight");
}

}  // namespace
}  // namespace fulcrum::stats
