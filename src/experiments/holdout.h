// Global holdouts (docs/experiments.md "Holdouts"): a few percent of users, chosen by a
// deterministic hash of one attribute with the holdout's own seed, kept out of every A/B test
// and flag rule that opts in (`holdout_id`), so that the holdout compared with everyone else
// measures the cumulative impact of what those tests and rules shipped, over months.
//
// A user is held out while the holdout runs when hash_v2(seed, attributes[hash_attribute])
// < percent / 100: the same test as the SDK payload's holdout rule (flags/payload.h: an
// experiment rule with ranges [[0, p], [p, 1]], the second range a passthrough). A user
// without the attribute is never held out (the SDKs skip an experiment rule whose hash
// attribute is missing). A stopped holdout releases its users: it holds no one out.
//
// Holdouts are Store documents of kind "holdout" (status "running" | "stopped"); writes use
// the document version for optimistic concurrency. Create request:
//   name (required), holdout_id ([A-Za-z0-9_.:@-], default new_id("holdout")), description,
//   percent in (0, 20] (default 5), hash_attribute (default "id"), seed (default the id),
//   start_date (ISO-8601, not in the future; default now: when users began to be held out),
//   metrics [names] (default ["conversion_rate", "revenue_per_user"]),
//   metric_types {metric: "binomial"|"continuous"} (default by name, as A/B tests).
// percent, hash_attribute, seed and start_date decide who is held out and are fixed at
// creation; name, description, metrics and metric_types may change.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "stats/analysis.h"
#include "store/store.h"

namespace fulcrum::experiments {

inline constexpr const char* kHoldoutDocumentKind = "holdout";
inline constexpr double kDefaultHoldoutPercent = 5;
inline constexpr double kMaxHoldoutPercent = 20;

enum class HoldoutStatus { kRunning, kStopped };
const char* holdout_status_name(HoldoutStatus status);

struct HoldoutMetric {
  std::string name;
  stats::MetricType type = stats::MetricType::kBinomial;  // binomial or continuous
};

struct Holdout {
  std::string holdout_id;
  std::string name, description;
  double percent = kDefaultHoldoutPercent;  // share of users held out, in percent
  std::string hash_attribute = "id";
  std::string seed;  // hash seed, the holdout id unless given
  std::vector<HoldoutMetric> metrics;
  HoldoutStatus status = HoldoutStatus::kRunning;
  UnixSeconds started_at = 0;
  std::optional<UnixSeconds> stopped_at;
  UnixSeconds created_at = 0, updated_at = 0;
  std::string created_by, updated_by;
  std::int64_t version = 0;

  // percent / 100: the end of the held-out range [0, share) of hash buckets.
  double share() const { return percent / 100; }
  // The user's hash bucket in [0, 1) for this holdout, nullopt when `attributes` (an object)
  // has no usable value of hash_attribute (missing, null or "").
  std::optional<double> bucket(const nlohmann::json& attributes) const;
  // True when the holdout is running and the user's bucket is below share().
  bool holds_out(const nlohmann::json& attributes) const;
};

nlohmann::json to_json(const Holdout& holdout);

Result<Holdout> create_holdout(Store& store, const Clock& clock, const nlohmann::json& request,
                               const std::string& actor);
Result<Holdout> get_holdout(Store& store, const std::string& holdout_id);
// Oldest first, ties by id.
Result<std::vector<Holdout>> list_holdouts(Store& store);
// Top-level fields of `patch` replace the stored ones (name, description, metrics,
// metric_types; the fields that decide membership are kInvalidArgument naming them). With
// "version", the write happens only if the stored version still equals it.
Result<Holdout> update_holdout(Store& store, const Clock& clock, const std::string& holdout_id,
                               const nlohmann::json& patch, const std::string& actor);
// running -> stopped (kFailedPrecondition when already stopped: stopping is final).
Result<Holdout> stop_holdout(Store& store, const Clock& clock, const std::string& holdout_id,
                             const std::string& actor);

// The check of a test's or a flag rule's `holdout_id`: kInvalidArgument naming `field` when no
// such holdout exists or it is stopped (it would hold no one out).
Status check_holdout_opt_in(Store& store, const std::string& holdout_id, const std::string& field);

// The cumulative-impact analysis of a holdout (GET /holdouts/{id}/impact): calendar months
// (UTC) from started_at to stopped_at (else clock.now()), the first one starting at
// started_at, at most kMaxHoldoutImpactMonths (the latest ones). For each month and each
// metric, the holdout's users against everyone else (the general population), both the
// month alone and cumulatively since the start: users (stored users who signed up before
// the period's end, in a group by hashing, no exposure needed), the mean per user (binomial:
// the share with a positive sum of the metric in the period; continuous: the sum per user),
// and general minus holdout, absolute and relative, with (1 - alpha) intervals and
// p-values: Welch t for continuous metrics, the two-proportion z-test for binomial ones,
// the relative difference by the delta method (stats/hypothesis.h compare_means /
// compare_proportions with the holdout as control). `opted_in` lists the A/B tests
// that opted in and what they shipped; the caller adds the flags (flags lie above this
// library). Reads the store through scan_user_period_sums: memory is one double per stored
// user and month (of at most kMaxMetricSumPeriods at a time) plus a constant.
inline constexpr int kMaxHoldoutImpactMonths = 60;
Result<nlohmann::json> holdout_impact(Store& store, const Clock& clock,
                                      const std::string& holdout_id, double alpha = 0.05);

}  // namespace fulcrum::experiments
