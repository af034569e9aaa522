// CUPAC (stats/cupac.h) and CUPED on capped per-user values (stats/analysis.h pre_values):
// numpy as the oracle for the cross-fitted ridge predictions and for GrowthBook's capped CUPED,
// seeded simulations for what has no oracle (unbiased under the null with ~95% coverage, and
// a variance cut beyond plain CUPED when the metric depends on more than its own past), and
// field-naming errors.
#include "stats/cupac.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "oracle_client.h"
#include "stats/analysis.h"
#include "stats/cuped.h"

namespace fulcrum::stats {
namespace {

using nlohmann::json;
using testing::close;

struct Dataset {
  std::vector<double> features;  // n x k
  std::vector<double> outcome;
  std::vector<std::uint32_t> folds;
};

// Outcome = a linear function of k features (one constant, one on a large offset) + noise.
Dataset linear_dataset(std::mt19937_64& rng, int n, int k, int fold_count) {
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<std::uint32_t> fold(0, static_cast<std::uint32_t>(fold_count - 1));
  Dataset d;
  for (int i = 0; i < n; ++i) {
    double y = 3;
    for (int j = 0; j < k; ++j) {
      double x = normal(rng) * (j + 1);
      if (j == 1) x = 7;            // constant: must get weight 0
      if (j == 2) x += 1e4;         // a large mean against its spread
      if (j == 3) x = std::abs(x);  // skewed, like counts
      d.features.push_back(x);
      y += (j % 2 == 0 ? 0.8 : -0.3) * (x - (j == 2 ? 1e4 : 0));
    }
    d.outcome.push_back(y + 2 * normal(rng));
    d.folds.push_back(fold(rng));
  }
  return d;
}

json cupac_cases() {
  std::mt19937_64 rng(2024);
  json cases = json::array();
  for (int c = 0; c < 6; ++c) {
    const int k = 4 + c;
    const int fold_count = 2 + c % 4;
    Dataset d = linear_dataset(rng, 60 + 70 * c, k, fold_count);
    json features = json::array();
    for (std::size_t i = 0; i < d.outcome.size(); ++i) {
      features.push_back(std::vector<double>(d.features.begin() + static_cast<long>(i * k),
                                             d.features.begin() + static_cast<long>((i + 1) * k)));
    }
    cases.push_back({{"features", features},
                     {"outcome", d.outcome},
                     {"folds", d.folds},
                     {"fold_count", fold_count},
                     {"ridge", c % 2 == 0 ? 1e-3 : 0.05}});
  }
  return cases;
}
const bool kCupacRegistered = testing::register_oracle_cases("cupac", cupac_cases());

TEST(Cupac, CrossFittedRidgePredictionsMatchNumpy) {
  const auto& batch = testing::oracle_batch("cupac");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (std::size_t i = 0; i < batch.cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const json& c = batch.cases[i];
    std::vector<double> features;
    for (const json& row : c["features"]) {
      for (double x : row) features.push_back(x);
    }
    const auto k = c["features"][0].size();
    const auto outcome = c["outcome"].get<std::vector<double>>();
    const auto folds = c["folds"].get<std::vector<std::uint32_t>>();
    CupacOptions options{c["fold_count"].get<int>(), c["ridge"].get<double>()};
    auto fitted = cross_fitted_predictions(features, k, outcome, folds, options);
    ASSERT_TRUE(fitted.is_ok()) << fitted.status().to_string();
    const json& want = batch.expected[i];
    ASSERT_EQ(fitted->prediction.size(), want["prediction"].size());
    double spread = 0;
    for (double y : outcome) spread = std::max(spread, std::abs(y));
    for (std::size_t u = 0; u < outcome.size(); ++u) {
      // Normal equations against numpy's solve on explicit standardised rows: agreement to
      // ~1e-9 of the outcome's scale (the offset feature costs a few digits).
      EXPECT_NEAR(fitted->prediction[u], want["prediction"][u].get<double>(), 1e-8 * spread)
          << "user " << u;
    }
    EXPECT_NEAR(fitted->cross_validated_r2, want["r2"].get<double>(), 1e-8);
    EXPECT_GT(fitted->cross_validated_r2, 0.5);  // the features do explain the outcome
  }
}

TEST(Cupac, BadInputNamesTheField) {
  const std::vector<double> features = {1, 2, 3, 4, 5, 6};
  const std::vector<double> outcome = {1, 2, 3};
  const std::vector<std::uint32_t> folds = {0, 1, 0};
  auto field_of = [](const Result<CupacPredictions>& r) { return r.status().field(); };
  EXPECT_EQ(field_of(cross_fitted_predictions(features, 4, outcome, folds)), "features");
  const std::vector<std::uint32_t> too_few = {0, 1}, out_of_range = {0, 1, 7};
  EXPECT_EQ(field_of(cross_fitted_predictions(features, 2, outcome, too_few)), "fold_of_user");
  EXPECT_EQ(field_of(cross_fitted_predictions(features, 2, outcome, out_of_range)),
            "fold_of_user");
  EXPECT_EQ(field_of(cross_fitted_predictions(features, 2, outcome, folds, {1, 0})), "folds");
  EXPECT_EQ(field_of(cross_fitted_predictions(features, 2, outcome, folds, {2, -1})), "ridge");
  // Two folds of 3 users cannot fit 2 features and an intercept out of fold.
  EXPECT_EQ(field_of(cross_fitted_predictions(features, 2, outcome, folds)), "folds");
  const std::vector<double> infinite = {1, INFINITY, 3, 4, 5, 6};
  EXPECT_EQ(field_of(cross_fitted_predictions(infinite, 2, outcome, folds)), "features");
}

// A seeded bank-like population: a user's spend depends on their activity (sessions) and
// on their spend level, which the pre-period sees only partly (observed or not).
struct User {
  double sessions, pre_spend, pre_seen, post;
};

std::vector<User> population(std::mt19937_64& rng, int n, double lift, int arm) {
  std::normal_distribution<double> normal;
  std::gamma_distribution<double> level(2.0, 10.0);
  std::bernoulli_distribution seen(0.5);
  std::vector<User> users(n);
  for (User& u : users) {
    const double spend = level(rng);
    u.sessions = std::max(0.0, 20 + 8 * normal(rng));
    u.pre_seen = seen(rng) ? 1 : 0;
    u.pre_spend = u.pre_seen * spend * (0.8 + 0.4 * std::abs(normal(rng)) / 2);
    u.post = (spend + 1.5 * u.sessions) * (arm == 1 ? 1 + lift : 1) + 5 * normal(rng);
  }
  return users;
}

struct ArmComparison {
  Comparison plain, cuped, cupac;
};

ArmComparison compare_arms(const std::vector<User>& control, const std::vector<User>& treatment,
                           std::uint64_t fold_seed) {
  // Features known before exposure; folds by a seeded hash of the user's position.
  std::vector<double> features, outcome;
  std::vector<std::uint32_t> folds;
  std::mt19937_64 fold_rng(fold_seed);
  for (const auto* arm : {&control, &treatment}) {
    for (const User& u : *arm) {
      features.insert(features.end(), {u.pre_spend, u.pre_seen, u.sessions});
      outcome.push_back(u.post);
      folds.push_back(static_cast<std::uint32_t>(fold_rng() % 5));
    }
  }
  auto fitted = cross_fitted_predictions(features, 3, outcome, folds);
  EXPECT_TRUE(fitted.is_ok());
  auto stats_of = [&](const std::vector<User>& arm, std::size_t offset, bool prediction) {
    CupedStats s;
    for (std::size_t i = 0; i < arm.size(); ++i) {
      const double x = prediction ? fitted->prediction[offset + i] : arm[i].pre_spend;
      s.post.n += 1;
      s.post.sum += arm[i].post;
      s.post.sum_squares += arm[i].post * arm[i].post;
      s.pre_sum += x;
      s.pre_sum_squares += x * x;
      s.cross_sum += x * arm[i].post;
    }
    return s;
  };
  const CupedStats c_pre = stats_of(control, 0, false),
                   t_pre = stats_of(treatment, control.size(), false);
  const CupedStats c_hat = stats_of(control, 0, true),
                   t_hat = stats_of(treatment, control.size(), true);
  ArmComparison out;
  out.plain = *compare_means(c_pre.post, t_pre.post, 0.05);
  out.cuped = *compare_cuped(c_pre, t_pre, 0.05);
  out.cupac = *compare_cuped(c_hat, t_hat, 0.05);
  return out;
}

TEST(Cupac, UnbiasedUnderTheNullWithNominalCoverage) {
  // 400 A/A replications: the CUPAC interval holds the true difference 0 about 95% of the
  // time and the estimates centre on 0 (the cross-fitted prediction never sees a user's own
  // outcome, and the arms are pooled in every fit).
  std::mt19937_64 rng(515);
  const int replications = 400;
  int covered = 0;
  double sum_estimates = 0, sum_se = 0;
  for (int r = 0; r < replications; ++r) {
    const auto control = population(rng, 300, 0, 0);
    const auto treatment = population(rng, 300, 0, 0);
    const ArmComparison result = compare_arms(control, treatment, 1000 + r);
    const EffectTest& cupac = result.cupac.absolute;
    covered += cupac.ci.lower <= 0 && 0 <= cupac.ci.upper ? 1 : 0;
    sum_estimates += cupac.estimate;
    sum_se += cupac.standard_error;
  }
  const double coverage = static_cast<double>(covered) / replications;
  EXPECT_GT(coverage, 0.92);
  EXPECT_LT(coverage, 0.98);
  // The mean of 400 estimates has a standard error of about se / 20.
  EXPECT_LT(std::abs(sum_estimates / replications), 3 * (sum_se / replications) / 20);
}

TEST(Cupac, CutsMoreVarianceThanPlainCupedWhenTheMetricDependsOnActivity) {
  std::mt19937_64 rng(99);
  const auto control = population(rng, 20000, 0.05, 0);
  const auto treatment = population(rng, 20000, 0.05, 1);
  const ArmComparison result = compare_arms(control, treatment, 7);
  const double plain = result.plain.absolute.standard_error;
  const double cuped_cut = 1 - std::pow(result.cuped.absolute.standard_error / plain, 2);
  const double cupac_cut = 1 - std::pow(result.cupac.absolute.standard_error / plain, 2);
  EXPECT_GT(cuped_cut, 0.1);              // the pre-period spend alone helps
  EXPECT_GT(cupac_cut, cuped_cut + 0.1);  // the activity explains much more
  // The true lift: 5% of E[spend + 1.5 sessions] = 0.05 (20 + 1.5 x 20) (sessions are
  // truncated at 0 2.5 sd below their mean: a 0.006 shift, negligible here).
  const double truth = 2.5;
  EXPECT_LT(result.cupac.absolute.ci.lower, truth);
  EXPECT_GT(result.cupac.absolute.ci.upper, truth);
}

json capped_cuped_cases() {
  std::mt19937_64 rng(31);
  std::lognormal_distribution<double> amount(2.5, 1.2);
  std::normal_distribution<double> noise;
  std::bernoulli_distribution pays(0.45);
  std::uniform_real_distribution<double> level(0.9, 0.995);
  json cases = json::array();
  for (int c = 0; c < 8; ++c) {
    json one = {{"level", level(rng)}};
    for (const char* arm : {"control", "treatment"}) {
      std::vector<double> pre, post;
      const int n = 200 + 150 * c;
      for (int i = 0; i < n; ++i) {
        const double base = pays(rng) ? amount(rng) : 0;
        pre.push_back(base * std::exp(0.3 * noise(rng)));
        post.push_back((arm[0] == 't' ? 1.1 : 1.0) * base * std::exp(0.3 * noise(rng)));
      }
      one[std::string(arm) + "_pre"] = pre;
      one[std::string(arm) + "_post"] = post;
    }
    cases.push_back(one);
  }
  return cases;
}
const bool kCappedCupedRegistered =
    testing::register_oracle_cases("capped_cuped", capped_cuped_cases());

MetricInput capped_revenue(const json& c) {
  MetricInput metric;
  metric.name = "revenue";
  metric.type = MetricType::kContinuous;
  metric.capping = CapSpec{CapKind::kPercentile, c["level"].get<double>(), false};
  for (const char* arm : {"control", "treatment"}) {
    MetricGroupInput group;
    group.values = c[std::string(arm) + "_post"].get<std::vector<double>>();
    group.pre_values = c[std::string(arm) + "_pre"].get<std::vector<double>>();
    metric.groups[arm] = group;
  }
  return metric;
}

TEST(CappedCuped, CapsTheCovariateWithTheMetricsCapAsGrowthBookDoes) {
  const auto& batch = testing::oracle_batch("capped_cuped");
  ASSERT_FALSE(batch.expected.is_null()) << "oracle.py failed";
  for (std::size_t i = 0; i < batch.cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    AnalysisInput input;
    input.metrics.push_back(capped_revenue(batch.cases[i]));
    auto analysis = analyze(input);
    ASSERT_TRUE(analysis.is_ok()) << analysis.status().to_string();
    const MetricResult& metric = analysis->metrics.front();
    const json& want = batch.expected[i];
    ASSERT_TRUE(metric.capping.has_value());
    EXPECT_TRUE(close(metric.capping->cap, want["cap"].get<double>()));
    EXPECT_TRUE(metric.cuped_applied);
    EXPECT_TRUE(close(metric.cuped_theta, want["capped"]["theta"].get<double>()));
    const GroupResult& treatment = metric.groups[1];
    ASSERT_TRUE(treatment.vs_control.has_value());
    EXPECT_TRUE(close(metric.groups[0].mean, want["capped"]["means"][0].get<double>()));
    EXPECT_TRUE(close(treatment.mean, want["capped"]["means"][1].get<double>()));
    EXPECT_NEAR(treatment.vs_control->p_value, want["capped"]["p_value"].get<double>(),
                1e-7 * std::max(1e-3, want["capped"]["p_value"].get<double>()));
    // The uncapped comparison beside it is CUPED-adjusted too, on the uncapped covariate.
    const GroupResult& uncapped = metric.capping->uncapped_groups[1];
    EXPECT_TRUE(close(uncapped.mean, want["uncapped"]["means"][1].get<double>()));
    EXPECT_NEAR(uncapped.vs_control->p_value, want["uncapped"]["p_value"].get<double>(),
                1e-7 * std::max(1e-3, want["uncapped"]["p_value"].get<double>()));
  }
}

TEST(CappedCuped, CovariatesMustMatchTheValues) {
  AnalysisInput input;
  MetricInput metric = capped_revenue(testing::oracle_batch("capped_cuped").cases[0]);
  metric.groups["treatment"].pre_values->pop_back();
  input.metrics.push_back(metric);
  auto analysis = analyze(input);
  ASSERT_FALSE(analysis.is_ok());
  EXPECT_EQ(analysis.status().field(), "metrics[0].groups.treatment.pre_values");
}

}  // namespace
}  // namespace fulcrum::stats
