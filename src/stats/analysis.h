// One-call analysis of an A/B(/n) test from per-group sufficient statistics:
// for every metric and every treatment group against control it runs the
// matching two-sample test (binomial: two-proportion z; continuous: Welch t,
// CUPED-adjusted when pre-period sums are given; ratio: delta method),
// optionally as always-valid sequential inference, adjusts the p-values of all
// (metric, treatment) comparisons together (Holm by default), adds the Bayesian
// chance to beat control and expected loss on the relative lift, checks sample
// ratio mismatch against the allocation, and recommends ship / keep_running /
// stop from the first (primary) metric. Every metric is a goal, a guardrail or a
// secondary metric (stats/decision.h decides ship from the goals and the guardrails'
// non-inferiority tests); continuous metrics given as per-user values can be capped
// (stats/capping.h, results reported capped and uncapped side by side); quantile metrics
// take per-user values (stats/quantile.h). The JSON form is documented in
// docs/analyze-input.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stats/bandit.h"
#include "stats/bayesian.h"
#include "stats/capping.h"
#include "stats/decision.h"
#include "stats/hypothesis.h"
#include "stats/multiple_testing.h"
#include "stats/post_stratification.h"
#include "stats/power.h"
#include "stats/recommendation.h"
#include "stats/srm.h"

namespace fulcrum::stats {

enum class MetricType { kBinomial, kContinuous, kRatio, kQuantile };
// "binomial", "continuous", "ratio", "quantile"
const char* metric_type_name(MetricType type);

struct MetricGroupInput {
  std::int64_t n = 0;  // users exposed
  double sum = 0;      // binomial: conversions; ratio: numerator sum
  double sum_squares = 0;
  // CUPED (continuous metrics), used when all three are present.
  std::optional<double> pre_sum, pre_sum_squares,
      pre_cross_sum;  // cross = sum pre*post
  // Ratio metrics: per-user denominator and its cross product with the
  // numerator.
  double denominator_sum = 0, denominator_sum_squares = 0, ratio_cross_sum = 0;
  // Ratio CUPED: the same users' pre-period numerator M' and denominator D' (see
  // stats/cuped.h RatioCupedStats for the product sums); used when every group has it.
  struct RatioPre {
    double numerator_sum = 0, numerator_sum_squares = 0;
    double denominator_sum = 0, denominator_sum_squares = 0;
    double numerator_x_pre_numerator = 0;        // sum M M'
    double denominator_x_pre_denominator = 0;    // sum D D'
    double pre_numerator_x_pre_denominator = 0;  // sum M' D'
    double numerator_x_pre_denominator = 0;      // sum M D'
    double denominator_x_pre_numerator = 0;      // sum D M'
  };
  std::optional<RatioPre> ratio_pre;
  // Per-user values instead of sums (continuous metrics: needed for capping; quantile
  // metrics: required). When present, n/sum/sum_squares are derived from them.
  std::optional<std::vector<double>> values;
  // Continuous metrics given as values: the same users' CUPED covariate, in the same order
  // (the pre-period value, or a CUPAC prediction; stats/cupac.h). pre_sum, pre_sum_squares
  // and pre_cross_sum are derived from them, after capping both at the metric's cap, as
  // GrowthBook caps the covariate with the metric's own cap.
  std::optional<std::vector<double>> pre_values;
};

struct MetricInput {
  std::string name;
  MetricType type = MetricType::kBinomial;
  bool higher_is_better = true;
  // Default: the first metric is the (primary) goal, the others are secondary.
  std::optional<MetricRole> role;
  // Guardrails only: relative worsening allowed (default kDefaultNonInferiorityMargin).
  std::optional<double> non_inferiority_margin;
  std::optional<CapSpec> capping;                  // continuous metrics given as values
  double quantile = 0.5;                           // quantile metrics: the level in (0, 1)
  std::map<std::string, MetricGroupInput> groups;  // by group name, control included
};

struct AnalysisInput {
  std::string control = "control";
  std::map<std::string, double> allocation;  // group -> weight; empty = equal split
  double alpha = 0.05;
  Correction correction = Correction::kHolm;
  bool cuped = true;  // apply CUPED where pre-period sums are present (continuous and ratio)
  bool sequential = false;
  double sequential_tuning = 5000;
  GaussianPrior prior;                 // on the relative lift; flat unless proper
  double target_power = 0.8;           // for keep_running estimates
  double target_mde = 0.05;            // relative lift the test should be able to detect
  std::optional<double> days_elapsed;  // to turn users into days
  std::vector<MetricInput> metrics;    // the first one is the primary metric
  // A bandit on the primary metric (binomial or continuous): Thompson-sampling weights for
  // the next allocation (stats/bandit.h). higher_is_better follows the primary metric.
  std::optional<BanditSettings> bandit;
  // Slices: the primary metric's statistics per value of a user attribute (tier, country,
  // app_version, ...). The `top` values with the most users are reported, the rest merged
  // into "other"; p-values are adjusted (`correction`) across every slice x treatment of
  // one attribute.
  // A value literally named "other" stays a value of its own: the merged rest is marked
  // `other` in the result, not told apart by its name.
  struct SliceDimension {
    std::string attribute;
    std::size_t top = 5;
    // Values too small to test (a group of the primary metric absent or with fewer than 2
    // users in that slice) go to "other" instead of failing the analysis, whatever their
    // rank; an "other" too small to test is reported with its users and no groups. Results
    // read from the store set this; `fulcrum analyze` input may.
    bool merge_untestable = false;
    // value -> group -> statistics (the primary metric's type and form)
    std::map<std::string, std::map<std::string, MetricGroupInput>> values;
    // Also post-stratify the primary metric by this attribute (stats/post_stratification.h):
    // every value is a stratum (not only the top ones). Binomial and continuous metrics.
    bool post_stratify = false;
  };
  std::vector<SliceDimension> slices;
};

struct TreatmentResult {
  EffectTest absolute;                 // treatment - control
  std::optional<EffectTest> relative;  // treatment / control - 1
  double p_value = 1;                  // of the absolute test (sequential when enabled)
  double adjusted_p_value = 1;
  bool significant = false;                 // adjusted_p_value < alpha
  std::optional<BayesianResult> bayesian;   // on the relative lift (absolute if none)
  double chance_to_beat_control = 0.5;      // in the metric's good direction
  std::optional<GuardrailCheck> guardrail;  // guardrail metrics with a relative lift
};

struct GroupResult {
  std::string name;
  bool is_control = false;
  std::int64_t n = 0;
  double mean = 0;      // conversion rate / mean / ratio (CUPED-adjusted when applied)
  double variance = 0;  // per-user variance used by the test
  std::optional<TreatmentResult> vs_control;  // absent for the control
};

struct CappingResult {
  CapSpec spec;
  double cap = 0;  // the value users were capped at in this analysis
  std::map<std::string, std::int64_t> users_capped;  // by group
  // The same comparison without capping, side by side (not part of the correction family:
  // adjusted_p_value is the raw p-value).
  std::vector<GroupResult> uncapped_groups;
};

struct MetricResult {
  std::string name;
  MetricType type = MetricType::kBinomial;
  MetricRole role = MetricRole::kSecondary;
  bool higher_is_better = true;
  bool cuped_applied = false;
  double cuped_theta = 0;
  std::optional<double> quantile;        // quantile metrics: the level
  std::optional<CappingResult> capping;  // when capped
  std::vector<GroupResult> groups;       // control first, then treatments by name (capped)
};

struct AnalysisOutput {
  std::string control;
  double alpha = 0.05;
  Correction correction = Correction::kHolm;
  bool sequential = false;
  std::vector<std::string> group_names;  // control first
  std::vector<std::int64_t> exposures;   // per group (primary metric n), SRM input
  SrmResult srm;
  std::vector<MetricResult> metrics;
  std::optional<std::string> winner;     // group name; "control" when every treatment is worse
  Recommendation recommendation;         // action and text follow `decision`
  ShipDecision decision;                 // which rule decided, for the candidate treatment
  std::optional<std::string> candidate;  // the treatment the decision is about
  // Mid-experiment power of the candidate's relative lift on the primary metric for
  // target_mde (absent when the lift has no standard error), and the days the extra users
  // take at the current traffic when days_elapsed is known.
  std::optional<MidExperimentPower> mid_power;
  std::optional<double> mid_power_additional_days;
  std::optional<BanditWeights> bandit;  // per group in the primary metric's group order
  struct SliceResult {
    std::string value;   // the attribute value, or "other" for the merged rest
    bool other = false;  // the merged rest of the values (not a value named "other")
    bool tested = true;  // false: too small to test (merge_untestable), `groups` empty
    std::int64_t users = 0;
    std::vector<GroupResult> groups;  // as a metric's groups; adjusted across the slices
  };
  // The primary metric post-stratified by a slice attribute, next to the plain comparison
  // (which stays the one the corrections and the decision use).
  struct PostStratifiedTreatment {
    std::string group;
    EffectTest absolute;
    std::optional<EffectTest> relative;
    double unstratified_standard_error = 0;  // of the absolute difference
    double variance_reduction = 0;           // 1 - (se / unstratified se)^2
  };
  struct PostStratification {
    std::size_t strata_used = 0;
    std::size_t strata_merged = 0;  // strata too small to stand alone, merged into the largest
    std::vector<PostStratifiedTreatment> treatments;
  };
  struct SliceTable {
    std::string attribute;
    std::vector<SliceResult> slices;  // by users, descending; "other" last
    std::optional<PostStratification> post_stratification;
    // Why the data could not be post-stratified (a group without variance, a zero control
    // mean), when post-stratification was asked for.
    std::optional<std::string> post_stratification_unavailable;
  };
  std::vector<SliceTable> slices;
};

// Errors name the offending field, e.g.
// "metrics[1].groups.variant.sum_squares".
Result<AnalysisOutput> analyze(const AnalysisInput& input);

}  // namespace fulcrum::stats
