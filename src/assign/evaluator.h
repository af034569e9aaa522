// THE evaluator: GrowthBook-compatible feature and experiment evaluation (SDK spec 0.8.0,
// packages/sdk-js/src/core.ts), used by /assign, remote evaluation, OFREP and the SDK
// payload alike, so that the server and every SDK agree bit for bit.
//
// CompiledFeatures::compile() takes a payload's "features" object once (rules parsed,
// conditions validated, seeds pre-hashed into FNV states, bucket ranges precomputed);
// evaluate() then does no JSON parsing and no allocation beyond the result's own fields.
// The experiment-rule path hashes, buckets and checks namespaces with the same functions as
// Assigner (assign/hash.h, assign/buckets.h), so POST /ab-tests/{id}/assign and a payload
// experiment rule with the same key/seed/weights/coverage/namespace/condition pick the same
// variation by construction.
//
// Exposure logging: record an exposure exactly when the SDKs fire their trackingCallback,
// i.e. when ExperimentResult::should_track() holds for run_experiment()'s result or for a
// feature result's experiment_result.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fulcrum::assign {

// GrowthBook's Result (types-growthbook.ts `Result<T>`).
struct ExperimentResult {
  bool in_experiment = false;
  int variation_id = 0;
  nlohmann::json value;
  bool hash_used = false;
  std::string hash_attribute;
  nlohmann::json hash_value;  // the attribute's value as given ("u1", or 123), "" when missing
  std::string key;            // the variation's meta[i].key, or the decimal variation id
  std::optional<std::string> name;  // meta[i].name
  std::optional<double> bucket;     // the user's hash in [0, 1) when hash_used
  bool passthrough = false;         // meta[i].passthrough (holdouts)
  bool sticky_bucket_used = false;
  std::string feature_id;  // the feature whose rule ran the experiment ("" for inline)
  // Contextual bandits (set when a bandit rule assigned the user by hash).
  std::optional<int> leaf_id;
  std::vector<double> variation_weights;
  std::optional<int> bandit_version;

  // True when an SDK would call its trackingCallback (record an exposure) for this result:
  // the user was assigned by hash (forced and querystring variations are not tracked).
  bool should_track() const { return in_experiment && hash_used; }
};

// GrowthBook's FeatureResult.
struct FeatureResult {
  nlohmann::json value;  // null when the feature is unknown or has no value
  bool on = false;       // JavaScript truthiness of value
  bool off = true;
  // "unknownFeature", "defaultValue", "force", "experiment", "prerequisite",
  // "cyclicPrerequisite", "override"
  std::string source;
  std::string rule_id;
  // The experiment rule's key when source == "experiment".
  std::optional<std::string> experiment_key;
  std::optional<ExperimentResult> experiment_result;
  // GrowthBook's FeatureResult.experiment: the Experiment object the rule ran (shared with the
  // compiled payload; a per-user copy for contextual bandits).
  std::shared_ptr<const nlohmann::json> experiment;
};

// Sticky bucketing (SDK spec "Sticky Bucketing"): a user's assignment per experiment is
// stored under (hash attribute name, attribute value) and reused while the experiment's
// bucketVersion stays >= its minBucketVersion, so changing weights or coverage mid-test does
// not move users. assignments maps "<experiment key>__<bucketVersion>" to the variation's
// meta key.
struct StickyAssignmentsDocument {
  std::string attribute_name;
  std::string attribute_value;
  std::map<std::string, std::string> assignments;
  friend bool operator==(const StickyAssignmentsDocument&,
                         const StickyAssignmentsDocument&) = default;
};

// "<attribute name>||<attribute value>", the documents' key in the SDKs.
std::string sticky_bucket_key(std::string_view attribute_name, std::string_view attribute_value);

// Where sticky assignments live. Implementations must be safe for concurrent calls when the
// store is shared between threads.
class StickyBucketStore {
 public:
  virtual ~StickyBucketStore() = default;
  virtual std::optional<StickyAssignmentsDocument> get_assignments(
      std::string_view attribute_name, std::string_view attribute_value) const = 0;
  virtual void save_assignments(const StickyAssignmentsDocument& document) = 0;
};

// A mutex-guarded map, keyed by sticky_bucket_key().
class InMemoryStickyBucketStore final : public StickyBucketStore {
 public:
  std::optional<StickyAssignmentsDocument> get_assignments(
      std::string_view attribute_name, std::string_view attribute_value) const override;
  void save_assignments(const StickyAssignmentsDocument& document) override;
  // Snapshot of every stored document by key.
  std::map<std::string, StickyAssignmentsDocument> documents() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, StickyAssignmentsDocument> documents_;
};

// What one evaluation is about. Pointers are borrowed for the duration of the call; null
// means "none" (no attributes reads as {}).
struct EvalContext {
  const nlohmann::json* attributes = nullptr;         // user attributes (object)
  const nlohmann::json* forced_variations = nullptr;  // {experiment key: variation index}
  const nlohmann::json* saved_groups = nullptr;       // payload savedGroups {id: [values]}
  std::string url;                                    // for inline experiments' url targeting
  bool enabled = true;   // false: no user enters any experiment (GrowthBook `enabled`)
  bool qa_mode = false;  // true: no random assignment, only forced variations
  StickyBucketStore* sticky_buckets = nullptr;  // optional; enables sticky bucketing
};

class CompiledFeatures;

// GrowthBook's run(experiment) for an inline experiment (cases.json "run"). Lenient like the
// SDK (bad weights fall back to equal weights, etc.). `features` resolves the experiment's
// parentConditions; null means "no features" (every prerequisite is then unknown).
ExperimentResult run_experiment(const nlohmann::json& experiment, const EvalContext& context,
                                const CompiledFeatures* features = nullptr);

// GrowthBook's getQueryStringOverride: the variation forced by "?<experiment key>=<index>" in
// `url`, when it is a valid index. Applied by run_experiment() and experiment rules when
// EvalContext::url is set (a browser's remote evaluation passes its location).
std::optional<int> query_string_override(std::string_view experiment_key, std::string_view url,
                                         int num_variations);

// A payload's "features" object compiled once so evaluate() does no JSON parsing.
// Immutable after compile(): safe for concurrent evaluate() from many threads; copies share
// the compiled state.
class CompiledFeatures {
 public:
  // kInvalidArgument naming the field ("features.X.rules[2].weights") for malformed input:
  // wrong JSON types, conditions with unknown operators, weights that do not match the
  // variations or do not sum to 1, coverage outside [0, 1], namespaces or ranges that are
  // not [start, end) inside [0, 1], unknown hash versions.
  // `contextual_bandits` is the payload's "contextualBandits" object (null: none).
  // Validation::kLenient accepts what the SDKs tolerate and repairs it the way they do
  // (unknown hash versions never bucket, bad weights become equal weights, unknown
  // operators never match); only non-object features/rules are still errors. Use it for
  // payloads that did not come through validated documents (e.g. conformance suites).
  enum class Validation { kStrict, kLenient };
  static Result<CompiledFeatures> compile(const nlohmann::json& features,
                                          const nlohmann::json* contextual_bandits = nullptr,
                                          Validation validation = Validation::kStrict);

  // GrowthBook's evalFeature(key).
  FeatureResult evaluate(std::string_view feature_key, const EvalContext& context) const;
  bool contains(std::string_view feature_key) const;
  std::vector<std::string> keys() const;  // sorted
  // The attributes sticky-bucket documents are keyed by (every experiment rule's hashAttribute,
  // default "id", and fallbackAttribute), sorted: what a caller may preload.
  std::vector<std::string> sticky_bucket_attributes() const;

  struct Impl;

 private:
  friend ExperimentResult run_experiment(const nlohmann::json& experiment,
                                         const EvalContext& context,
                                         const CompiledFeatures* features);
  explicit CompiledFeatures(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// The SDKs' JSON shapes (camelCase keys, as cases.json and remote evaluation use them).
nlohmann::json to_json(const ExperimentResult& result);
nlohmann::json to_json(const FeatureResult& result);

}  // namespace fulcrum::assign
