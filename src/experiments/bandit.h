// Bandit tests in the product: the scheduled recomputation of a bandit's traffic weights
// from its primary metric's posterior (stats/bandit.h: Thompson sampling, top-two, minimum
// weight per arm) and the weights history it leaves.
//
// Storage: one Store document per test, kind "bandit_history", id = test_id, whose body
// {"test_id", "entries": [...]} lists every recomputation of every phase, oldest first
// (at most kMaxBanditHistoryEntries; the oldest are dropped beyond that). The weights in
// force live on the experiment document itself (Experiment::bandit_weights, its
// "bandit_state"), so /assign and the SDK payload read them with the test. Both documents
// are versioned (optimistic concurrency), which makes a recomputation idempotent per period:
// the history is appended only when it has no entry for (phase, period), and a history
// entry whose weights did not reach the experiment (a concurrent edit) is applied on the
// next run instead of being recomputed.
//
// Period: floor((now - phase start) / recompute interval); period 0 starts with the phase.
// Until every arm has 100 exposed users (gbstats' rule) an entry records the posterior but
// keeps the weights as they are.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"
#include "experiments/experiment.h"
#include "store/store.h"

namespace fulcrum::experiments {

inline constexpr const char* kBanditHistoryKind = "bandit_history";
inline constexpr std::size_t kMaxBanditHistoryEntries = 5000;

struct BanditArmSummary {
  std::string group;
  double weight = 0;                                   // the weight in force after this entry
  double best_arm_probability = 0;                     // P(arm is best | data)
  std::optional<double> posterior_mean, posterior_sd;  // absent before every arm has 2 users
  std::int64_t users = 0;                              // exposed users of the phase at the time
  std::int64_t converted = 0;                          // users with a positive value
};

struct BanditHistoryEntry {
  int phase = 0;
  std::int64_t period = 0;
  UnixSeconds at = 0;
  std::string metric;            // the primary metric
  bool weights_changed = false;  // false during burn-in (an arm below 100 users)
  bool top_two = false;
  std::vector<BanditArmSummary> arms;  // group order (control first)
};
nlohmann::json to_json(const BanditHistoryEntry& entry);

// The period `now` falls in for the test's current phase (nullopt when it is not an active
// bandit or its phase has not started).
std::optional<std::int64_t> bandit_period(const Experiment& e, UnixSeconds now);

// Recomputes one test's weights for the current period. Returns the new entry, or nullopt
// when the test is not an active bandit or the period is already recorded (idempotent).
// kNotFound for an unknown test.
Result<std::optional<BanditHistoryEntry>> recompute_bandit_weights(Store& store, const Clock& clock,
                                                                   const std::string& test_id);

// The bandit_weights job body: every active bandit test whose period is not recorded yet.
// Returns {"tests": [...recomputed ids], "skipped": n, "errors": [{test_id, error}]}.
Result<nlohmann::json> run_bandit_recomputation(Store& store, const Clock& clock);

// The history, oldest first (empty for a test without one).
Result<std::vector<BanditHistoryEntry>> bandit_history(Store& store, const std::string& test_id);

// GET /ab-tests/{id}/bandit and the results' "bandit" block: {"enabled", "min_weight",
// "recompute_interval_minutes", "top_two", "current_weights" {group: w}, "updated_at",
// "best_arm_probability" {group: p} (latest entry), "history": [entries]}.
Result<nlohmann::json> bandit_summary(Store& store, const Experiment& e);

// Expected share of each group's exposures under the weights history (for the SRM check of
// a bandit, whose allocation changed over time): users who arrived between two entries were
// bucketed with the weights in force then. Group order; empty without history.
std::vector<double> bandit_expected_shares(const Experiment& e,
                                           const std::vector<BanditHistoryEntry>& history,
                                           const std::vector<std::int64_t>& users_now);

}  // namespace fulcrum::experiments
