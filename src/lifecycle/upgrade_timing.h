// Upgrade timing (api-contract.md: optimize_upgrade_timing): for a free or plus user, the
// day in the next 30 days with the highest projected 7-day upgrade propensity (today when
// it is already near its peak), projecting the user's engagement trend forward; the
// calibrated propensity on that day as confidence_score; the largest positive feature
// contributions (coefficient x standardised value) as upgrade_reasons; churn risk, failed
// payments and declining use as risk_factors. Premium users get an "already at the top
// tier" answer; unknown users NotFound.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/stored_model.h"
#include "core/time.h"
#include "lifecycle/upgrade_propensity.h"
#include "store/store.h"

namespace fulcrum {

struct UpgradeTiming {
  std::string timing_id;
  std::string user_id;
  Tier current_tier = Tier::kFree;
  std::optional<UnixSeconds> optimal_upgrade_date;  // none for premium users
  double confidence_score = 0;  // calibrated P(upgrade within 7 days of that date)
  double propensity_today = 0;  // calibrated P(upgrade within 7 days from now)
  int days_until_optimal = 0;
  std::vector<std::string> upgrade_reasons;
  std::vector<std::string> risk_factors;
  std::string recommendation;

  nlohmann::json to_json() const;
};

struct UpgradeTimingOptions {
  UpgradePropensityOptions propensity;
  int lookahead_days = 30;
  // "Today" when today's propensity is at least this share of the projected peak.
  double near_peak_share = 0.9;
};

// The layout version of UpgradeTimingModel::serialize (bump it with any layout change).
constexpr int kUpgradeTimingModelFormat = 1;
// A short hash of every option that shapes a trained upgrade-timing model.
std::string upgrade_timing_options_fingerprint(const UpgradeTimingOptions& options);

// A trained propensity model, answering one user at a time from that user's usage rollups
// (the model keeps no per-user history: a server scores a user from their own rows).
class UpgradeTimingModel {
 public:
  static Result<UpgradeTimingModel> train(const UsageHistory& history, UnixSeconds now,
                                          const UpgradeTimingOptions& options = {});
  // The user's timing from `history` (the whole store's, or load_user's one user);
  // NotFound when the user is not in it.
  Result<UpgradeTiming> timing_for(const UsageHistory& history, const std::string& user_id) const;
  // For a user who joined after training: no engagement yet, only tier and tenure.
  UpgradeTiming timing_for_new_user(const User& user) const;
  // Calibrated propensity of a user's projected engagement `days` ahead (for tests/charts).
  double projected_propensity(const EngagementCounts& counts, int days) const;

  UnixSeconds trained_at() const { return trained_at_; }
  const UpgradePropensityModel& propensity() const { return *propensity_; }

  // The model's binary form (core/binary_codec.h, layout kUpgradeTimingModelFormat), bit
  // for bit; deserialize is kInvalidArgument for anything else.
  std::string serialize() const;
  static Result<UpgradeTimingModel> deserialize(std::string_view payload);

 private:
  UpgradeTimingModel() = default;
  UpgradeTiming answer(const std::string& user_id, Tier tier, const EngagementCounts& counts) const;
  UnixSeconds trained_at_ = 0;
  UpgradeTimingOptions options_;
  std::shared_ptr<const UpgradePropensityModel> propensity_;
};

// The days of rollups upgrade timing reads for an analysis at `now`: the snapshots'
// 56-day feature windows and their labels (the whole history up to now).
UsageLoadOptions upgrade_history_window(UnixSeconds now, const UpgradeTimingOptions& options);
// The streamed history of that window (UsageHistory::open), walked kUpgradeKeysPerSlice
// users at a time.
Result<UsageHistory> open_upgrade_history(Store& store, UnixSeconds now,
                                          const UpgradeTimingOptions& options);
// A quarter of the default slice: the window is 140 days, and a slice's day and feature-day
// rows (with their vectors' growth) were ~190 MB at 32k users, more than the training rows
// of 250k users. A quarter costs a few more range reads.
constexpr std::uint32_t kUpgradeKeysPerSlice = UsageHistory::kDefaultKeysPerSlice / 4;

// Engagement counts projected `days` ahead: session, usage and paywall trends continue at
// their last-14-day growth rate (clamped to 0.5x..2x per 14 days), tenure grows.
EngagementCounts project_engagement(const EngagementCounts& now, int days);

// One-shot: loads history up to clock.now(), trains, answers. Prefer UpgradeTimingService.
Result<UpgradeTiming> optimize_upgrade_timing(Store& store, const Clock& clock,
                                              const std::string& user_id,
                                              const UpgradeTimingOptions& options = {});

// Time-split evaluation on the store's history up to `now`.
Result<UpgradeEvaluation> evaluate_upgrade_timing(Store& store, UnixSeconds now,
                                                  const UpgradePropensityOptions& options = {});

// The codec that stores UpgradeTimingModels trained with `options` (name "upgrade_timing").
ModelCodec<UpgradeTimingModel> upgrade_timing_model_codec(const UpgradeTimingOptions& options);

// Thread-safe holder of one trained model, shared through the store (core/stored_model.h):
// loaded from it or retrained (and stored) when older than max_model_age.
class UpgradeTimingService {
 public:
  explicit UpgradeTimingService(UpgradeTimingOptions options = {},
                                UnixSeconds max_model_age = kSecondsPerDay)
      : UpgradeTimingService(options, holder_options_with_max_age(max_model_age)) {}
  UpgradeTimingService(UpgradeTimingOptions options, StoredModelHolderOptions holder_options,
                       bool share_through_store = true);
  Status refresh(Store& store, UnixSeconds now);
  Result<UpgradeTiming> for_user(Store& store, const Clock& clock, const std::string& user_id);
  std::shared_ptr<const UpgradeTimingModel> model() const;
  // The current model, loaded or trained first when absent or stale (as for_user does).
  Result<std::shared_ptr<const UpgradeTimingModel>> fresh_model(Store& store, const Clock& clock);
  std::optional<ServedModel> served() const { return models_.served(); }
  int trainings() const { return models_.trainings(); }

 private:
  StoredModelHolder<UpgradeTimingModel>::Train trainer(Store& store) const;
  Result<std::shared_ptr<const UpgradeTimingModel>> fresh(Store& store, UnixSeconds now);

  UpgradeTimingOptions options_;
  bool share_through_store_;
  std::string replica_id_;
  StoredModelHolder<UpgradeTimingModel> models_;
};

}  // namespace fulcrum
