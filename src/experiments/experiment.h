// The A/B test model, its create request (the HTTP contract's body plus optional fields)
// and its JSON forms. Parsing is strict: unknown fields and bad values are kInvalidArgument
// naming the field ("traffic_allocation.variant", "metric_types.revenue_per_user").
//
// Create request fields (contract names kept):
//   test_name, feature_name, success_metrics [names], test_groups {group: config},
//   traffic_allocation {group: weight}                                        (required)
//   description, hypothesis, start_date (ISO-8601), created_by,
//   control (default "control" when such a group exists, else the first name in order),
//   coverage (0,1] = share of eligible users who enter (default 1),
//   namespace {"id", "start", "end"} (mutually exclusive experiments share an id),
//   targeting (GrowthBook-style condition on user attributes, see assign/condition.h),
//   metric_types {metric: "binomial"|"continuous"|"quantile"} (default: names containing "rate" or
//     "conversion" are binomial, others continuous),
//   lower_is_better [metric names], alpha (default 0.05),
//   analysis_method "frequentist"|"bayesian"|"sequential", min_sample_size (per group),
//   target_power (default 0.8), target_mde (relative, default 0.05),
//   metric_roles {metric: "goal"|"guardrail"|"secondary"} (success_metrics[0] is the primary
//     goal; the others default to secondary), non_inferiority_margins {guardrail: relative
//     margin >= 0, default 0.01} (see stats/decision.h),
//   metric_capping {metric: {"type": "absolute"|"percentile", "value", "ignore_zeros"}}
//     (continuous metrics; percentile value in (0, 1), absolute value > 0),
//   metric_quantiles {metric: level in (0, 1)} (required for metric_types "quantile"),
//   bandit {enabled, min_weight, recompute_interval_minutes, top_two} (see BanditConfig),
//   holdout_id (a running holdout, experiments/holdout.h: its users get no variant)
//                                                                             (optional)
// Groups are assigned in a fixed order, control first then the others by name, so the
// bucket a user gets does not depend on JSON key order.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "assign/assigner.h"
#include "assign/buckets.h"
#include "core/status.h"
#include "core/time.h"
#include "experiments/lifecycle.h"
#include "stats/analysis.h"

namespace fulcrum::experiments {

enum class AnalysisMethod { kFrequentist, kBayesian, kSequential };
const char* analysis_method_name(AnalysisMethod method);

struct MetricSpec {
  std::string name;
  stats::MetricType type = stats::MetricType::kBinomial;
  bool higher_is_better = true;
  // The first success metric is the primary goal; the others are secondary unless
  // metric_roles says otherwise.
  stats::MetricRole role = stats::MetricRole::kSecondary;
  std::optional<double> non_inferiority_margin;  // guardrails only (relative, >= 0)
  // Continuous metrics: winsorise every user's value at an absolute cap or at a percentile
  // of all exposed users' values, computed afresh per analysis; results show the capped
  // and the uncapped comparison side by side (stats/capping.h).
  std::optional<stats::CapSpec> capping;
  std::optional<double> quantile;  // quantile metrics: the level in (0, 1), 0.9 = p90
};

struct GroupSpec {
  std::string name;
  nlohmann::json config = nlohmann::json::object();  // what the app renders for this group
  double weight = 0;
};

// A bandit test (docs/experiments.md "Bandits"): the primary metric's posterior decides the
// traffic weights, recomputed every `recompute_interval_minutes` by the bandit_weights job
// (experiments/bandit.h); traffic_allocation holds the weights it starts with. Users keep the
// variant of their first exposure when the weights change (sticky, per phase).
struct BanditConfig {
  bool enabled = false;
  double min_weight = 0.01;                        // per arm, in (0, 1/arms]
  std::int64_t recompute_interval_minutes = 1440;  // [15, 43200]
  // Top-two Thompson (Russo 2020) keeps exploring the runner-up; with two arms it is always
  // 50/50, so the default is top-two from three arms on and plain Thompson for two.
  std::optional<bool> top_two;
  bool uses_top_two(std::size_t arms) const { return top_two.value_or(arms > 2); }
  friend bool operator==(const BanditConfig&, const BanditConfig&) = default;
};

// Everything a person configures; frozen (groups, weights, coverage, namespace, targeting)
// once the test has started, except through a new phase.
struct ExperimentConfig {
  std::string test_name, feature_name, description, hypothesis, created_by;
  std::vector<MetricSpec> success_metrics;  // the first is the primary metric
  std::vector<GroupSpec> groups;            // assignment order: control first
  std::string control = "control";
  double coverage = 1.0;
  std::optional<assign::Namespace> ns;
  nlohmann::json targeting = nlohmann::json::object();
  double alpha = 0.05;
  AnalysisMethod method = AnalysisMethod::kFrequentist;
  std::int64_t min_sample_size = 0;
  double target_power = 0.8;
  double target_mde = 0.05;
  std::optional<UnixSeconds> start_date;
  BanditConfig bandit;
  // The global holdout the test opted into ("" = none): its users are kept out of the test
  // (experiments/holdout.h). Frozen while a phase runs, like the allocation.
  std::string holdout_id;

  assign::Allocation allocation() const;
  const GroupSpec* find_group(const std::string& name) const;
};

// A seed-preserving coverage change within a phase (set_coverage in service.h).
struct CoverageChange {
  UnixSeconds at = 0;
  double from = 0, to = 0;
  std::string by;  // who changed it: a key's name, "automation:experiment_policies", ...
};

struct PhaseRecord {
  int phase = 0;
  std::string hash_seed;
  std::optional<UnixSeconds> started_at, ended_at;
  nlohmann::json traffic_allocation;  // weights in force during the phase
  double coverage = 1.0;  // in force now (the latest coverage change, else the phase's start)
  std::vector<CoverageChange> coverage_changes;  // oldest first
};

struct Experiment {
  std::string test_id;
  ExperimentConfig config;
  ExperimentStatus status = ExperimentStatus::kDraft;
  int phase = 0;
  std::string hash_seed;  // test_id for phase 0, test_id + ":phase<N>" afterwards
  std::vector<PhaseRecord> phases;
  UnixSeconds created_at = 0, updated_at = 0;
  std::optional<UnixSeconds> started_at, ended_at;
  std::optional<std::string> winner;  // set by complete (forced or from the analysis)
  bool winner_forced = false;
  std::int64_t version = 0;  // store document version (optimistic concurrency)
  // Bandit tests: the weights in force (group order), set by the bandit_weights job for the
  // current phase; empty until the first recomputation (config weights apply).
  std::vector<double> bandit_weights;
  std::optional<UnixSeconds> bandit_weights_at;
  std::int64_t bandit_period = -1;  // recompute period the weights come from

  // The allocation users are assigned with now: the config's, with the bandit's weights
  // when it has any. /assign and the SDK payload both use this.
  assign::Allocation current_allocation() const;

  // experiment_id written on exposures of the current phase: the test id in phase 0,
  // "<test_id>:phase<N>" afterwards, so each phase's exposures are counted separately.
  std::string exposure_key() const { return exposure_key_for_phase(phase); }
  std::string exposure_key_for_phase(int phase_number) const;
};

// Parses a create request (or a full config during updates). `field_prefix` is prepended to
// field names in errors.
Result<ExperimentConfig> parse_config(const nlohmann::json& request);
// The request-shaped JSON of a config (parse_config(config_to_json(c)) == c).
nlohmann::json config_to_json(const ExperimentConfig& config);

// Full JSON (config + state); this is also the stored document body.
nlohmann::json to_json(const Experiment& experiment);
Result<Experiment> experiment_from_json(const nlohmann::json& body);

// Default metric type from its name: "rate"/"conversion" -> binomial, else continuous.
stats::MetricType default_metric_type(const std::string& metric_name);

}  // namespace fulcrum::experiments
