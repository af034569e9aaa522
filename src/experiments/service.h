// A/B test operations over a Store, under the contract's names, for the HTTP handlers, the
// CLI and in-process callers. Every function takes the Store and the Clock explicitly
// (inject a ManualClock in tests) and returns Result: kInvalidArgument naming the field for
// bad input, kNotFound for unknown test ids, kFailedPrecondition (HTTP 409) for illegal
// lifecycle transitions, frozen-config edits and concurrent modifications.
//
// Experiments are stored as Store documents of kind "experiment" whose body is
// to_json(Experiment); writes use the document version for optimistic concurrency.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"
#include "experiments/experiment.h"
#include "store/store.h"

namespace fulcrum::experiments {

inline constexpr const char* kDocumentKind = "experiment";

// Creates a draft test from the contract's create request; the id is the request's optional
// "test_id" (the caller's own key, e.g. from the app's code; kAlreadyExists when taken), else
// new_id("test").
Result<Experiment> create_ab_test(Store& store, const Clock& clock, const nlohmann::json& request);
// Same, with a caller-chosen id (demo data, imports). kAlreadyExists when taken.
Result<Experiment> create_ab_test_with_id(Store& store, const Clock& clock,
                                          const std::string& test_id,
                                          const nlohmann::json& request);

Result<Experiment> get_ab_test(Store& store, const std::string& test_id);
// Writes the test's document as it is in `e`; its version guards against a concurrent edit
// (kFailedPrecondition when the stored one moved on), and `e.version` becomes the new one.
Status save_ab_test(Store& store, Experiment& e);
// All tests, optionally only those in one status, newest first.
Result<std::vector<Experiment>> list_ab_tests(Store& store,
                                              std::optional<ExperimentStatus> status = {});

Result<Experiment> start_ab_test(Store& store, const Clock& clock, const std::string& test_id);
Result<Experiment> pause_ab_test(Store& store, const Clock& clock, const std::string& test_id);
Result<Experiment> resume_ab_test(Store& store, const Clock& clock, const std::string& test_id);
// Completes the test; `forced_winner` (a group name) overrides the analysis, otherwise the
// winner is the analysis winner when there is a significant one.
Result<Experiment> complete_ab_test(Store& store, const Clock& clock, const std::string& test_id,
                                    std::optional<std::string> forced_winner = std::nullopt);
Result<Experiment> cancel_ab_test(Store& store, const Clock& clock, const std::string& test_id);
// Dispatches one of the above by action.
Result<Experiment> apply_lifecycle_action(Store& store, const Clock& clock,
                                          const std::string& test_id, LifecycleAction action,
                                          std::optional<std::string> forced_winner = {});

// Changes configuration fields (top-level keys of `patch` replace the stored ones). In a
// draft anything may change; once started, groups, weights, coverage, namespace and
// targeting are frozen (kFailedPrecondition pointing to new_phase), while descriptive
// fields, metrics settings and alpha may still change.
Result<Experiment> update_ab_test(Store& store, const Clock& clock, const std::string& test_id,
                                  const nlohmann::json& patch);

// Starts a new phase of an active or paused test, optionally with new allocation settings
// (same patch rules as update_ab_test, frozen fields allowed): the phase number goes up, the
// hash seed changes so users are deliberately reshuffled, and exposures of the new phase are
// recorded (and analysed) separately.
Result<Experiment> new_phase(Store& store, const Clock& clock, const std::string& test_id,
                             const nlohmann::json& patch = nlohmann::json::object());

// Changes the coverage of a draft, active or paused test without a new phase: the hash seed
// and the bucket ranges' starts stay, so raising coverage keeps every included user in the
// same variation and adds new users, and lowering it removes users from the test but never
// moves one to another variation (GrowthBook ranges [start_i, start_i + coverage * w_i),
// assign/buckets.h). Exposures stay in the phase's analysis. The change is recorded in the
// current phase's `coverage_changes` (old and new value, `changed_by`); the caller audits
// it. `coverage` in (0, 1] (kInvalidArgument naming "coverage"); completed and cancelled
// tests are kFailedPrecondition. `expected_version` (when given) must match the stored
// document's version (kFailedPrecondition otherwise), so a job acting on what it read does
// not overwrite a change made meanwhile.
struct CoverageUpdate {
  Experiment experiment;
  double previous_coverage = 1.0;
};
Result<CoverageUpdate> set_coverage(Store& store, const Clock& clock, const std::string& test_id,
                                    double coverage, const std::string& changed_by,
                                    std::optional<std::int64_t> expected_version = {});

struct Assignment {
  std::string test_id;
  std::string user_id;
  bool in_experiment = false;
  std::optional<std::string> variant;  // group name; for completed tests, the winner
  nlohmann::json config;               // the group's config (null when no variant)
  std::string reason;  // "assigned", "not_active", "targeting", "namespace", "coverage",
                       // "completed", "holdout"
  // The user is in the running holdout the test opted into: no variant, no exposure.
  bool held_out = false;
  int phase = 0;
  double bucket = 0;  // the user's hash bucket in [0, 1)
  // Bandit tests: the variant is the user's first exposure in this phase, kept although
  // the weights changed (the bucket may now fall in another variant's range).
  bool sticky = false;
  bool exposure_recorded = false;
};
nlohmann::json to_json(const Assignment& assignment);

// Deterministic assignment (GrowthBook algorithm, hash version 2, seed = hash_seed). The
// targeting condition is evaluated on `attributes` when given, otherwise on the stored user
// (id, tier, country, app_version, signup_at and free-form attributes). When the test is
// active and the user is in it, an ExposureEvent (at clock.now()) is stored.
Result<Assignment> assign_user(Store& store, const Clock& clock, const std::string& test_id,
                               const std::string& user_id,
                               const nlohmann::json* attributes = nullptr);

// assign_user's decision for an already loaded test, without writing: when the user is in
// the running test, `exposure` is set to the ExposureEvent (at `now`) the caller must store
// before it reports the assignment (exposure_recorded is left false for the caller to set).
// The server uses this to commit the exposure together with the call's audit entry.
Result<Assignment> plan_assignment(Store& store, const Experiment& experiment,
                                   const std::string& user_id, const nlohmann::json* attributes,
                                   UnixSeconds now, std::optional<ExposureEvent>& exposure);

// The user attributes targeting sees for a stored user.
nlohmann::json user_attributes(const User& user);

// Statistical results with the contract's fields (test_name, winner, recommendation,
// group_analysis{group: conversion_rate, statistical_significance, p_value, winner}) plus
// per-metric lift and intervals, sample sizes, SRM verdict, Bayesian/sequential fields and
// cumulative daily conversion for charts. See results.cc for the full shape.
//
// Slices (`options.slice`): the primary metric's comparison per value of a stored user
// attribute (store/store.h sliced_metric_stats: tier, country, app_version or a free-form
// attribute), the `slice_top` values with the most exposed users plus the merged rest
// ("other": true, so a value named "other" stays apart), Holm-adjusted across the slices x
// treatments. A capped primary metric is sliced at the cap of the whole analysis.
struct ResultsOptions {
  std::optional<std::string> slice;  // a user attribute name (is_slice_attribute_name)
  std::size_t slice_top = 5;         // [1, kMaxSliceTop]
  // Also post-stratify the primary metric by the slice attribute (every value a stratum).
  bool post_stratify = false;
  // Also report CUPAC on the primary metric (experiments/cupac.h) next to plain CUPED.
  bool cupac = false;
};
inline constexpr std::size_t kMaxSliceTop = 50;
// kInvalidArgument naming "slice", "slice_top" or "post_stratify" (which needs a slice).
Status validate_results_options(const ResultsOptions& options);

Result<nlohmann::json> analyze_ab_test_results(Store& store, const Clock& clock,
                                               const std::string& test_id,
                                               const ResultsOptions& options = {});

// Pre-period window for CUPED covariates.
inline constexpr UnixSeconds kCupedPrePeriod = 14 * kSecondsPerDay;

}  // namespace fulcrum::experiments
