// Feature sunset analysis (analyze_feature_sunset): for every catalog feature,
// its current usage (weekly active users, share of all weekly actives), its
// usage trend over the last `trend_weeks` weeks (Theil-Sen slope + Mann-Kendall
// significance: growing / stable / declining), the revenue at stake from paying
// users who depend on it (catalog value per adopting user, else their payments),
// its maintenance cost (catalog), and a keep
// / monitor / deprecate / sunset recommendation by the rules in docs/sunset.md,
// with a sunset date `notice_days` ahead and a migration plan (most similar
// features by co-usage, users to notify, steps). Weeks are aligned to `now`:
// the last week is [now - 7d, now). Money is per month, in minor units inside.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/money.h"
#include "core/status.h"
#include "core/time.h"
#include "store/model.h"
#include "sunset/trend.h"

namespace fulcrum {

class Clock;
class Store;

struct SunsetConfig {
  int trend_weeks = 12;                   // weekly series the trend is fitted on
  // Fewer full weeks of history than this (a young store): the trend is reported "stable"
  // rather than guessed from a few points.
  int trend_min_weeks = 4;
  double trend_max_p_value = 0.05;        // Mann-Kendall significance for growing/declining
  double trend_min_weekly_change = 0.02;  // |Theil-Sen slope| / mean weekly users per week
  int dependency_weeks = 4;               // a user depends on a feature used in >= ...
  int dependency_min_weeks_used = 2;      // ... this many of the last dependency_weeks weeks
  double low_share = 0.10;                // below: a niche feature (share of weekly active users)
  double core_share = 0.25;  // at or above: a core feature, kept unless declining (then deprecated)
  // Fraction of revenue_impact expected to be lost when the feature goes; a declining
  // feature is sunset only when its maintenance cost exceeds the expected loss.
  double expected_revenue_loss_rate = 1.0;
  // Payments window for revenue_impact of features whose catalog value is 0.
  int revenue_days = 30;
  int notice_days = 90;  // sunset_date = now + notice_days
  int max_alternatives = 3;
  Status validate() const;
  int history_days() const { return 7 * trend_weeks; }
};

struct FeatureUsage {
  std::int64_t weekly_active_users = 0;  // distinct users in the last week
  double share_of_active_users = 0;      // of all users active in the last week
  std::int64_t dependent_users = 0;      // used in >= dependency_min_weeks_used weeks
  std::int64_t dependent_paying_users = 0;
  std::int64_t users_last_trend_window = 0;  // anyone who used it in trend_weeks weeks
  std::vector<std::int64_t> weekly_history;  // oldest first, trend_weeks entries
};

struct UsageTrendResult {
  std::string direction = "stable";   // growing, stable, declining
  TheilSen theil_sen;                 // users per week
  double relative_weekly_change = 0;  // slope / mean weekly users
  MannKendall mann_kendall;
  int weeks_observed = 0;  // full weeks of history the trend was fitted on
};

struct FeatureSunsetAnalysis {
  std::string sunset_id;
  std::string feature_name;
  FeatureUsage current_usage;
  UsageTrendResult usage_trend;
  Money revenue_impact;
  Money maintenance_cost;
  std::string sunset_recommendation;  // keep, monitor, deprecate, sunset
  std::optional<UnixSeconds> sunset_date;
  std::vector<std::string> migration_plan;
  std::vector<std::string> reasons;  // which rule decided, in words
  nlohmann::json to_json() const;
};

// Aggregated usage per feature: the plain input of the analysis (built from the
// store in one pass by load_sunset_input, or by hand in tests).
struct SunsetInput {
  UnixSeconds now = 0;
  std::vector<Feature> features;
  std::vector<std::int64_t> weekly_active_users_total;  // all active users per week
  struct PerFeature {
    std::vector<std::int64_t> weekly_users;  // trend_weeks entries, oldest first
    std::int64_t dependent_users = 0;
    std::int64_t dependent_paying_users = 0;
    std::int64_t dependent_revenue_minor = 0;
    std::int64_t users_in_window = 0;
    // Jaccard similarity of recent user sets with every other feature (same
    // order).
    std::vector<double> co_usage;
  };
  std::vector<PerFeature> per_feature;  // same order as features
  // Weeks before this index began before the store's first event (or only partly
  // after it): they hold no or partial data, so trends are fitted from here.
  int first_full_week = 0;
};

Result<SunsetInput> load_sunset_input(Store& store, UnixSeconds now, const SunsetConfig& config);

// The pure analysis: one entry per feature, in catalog order.
Result<std::vector<FeatureSunsetAnalysis>> analyze_feature_sunset(const SunsetInput& input,
                                                                  const SunsetConfig& config);
// Store + clock entry point used by the CLI and HTTP layers.
Result<std::vector<FeatureSunsetAnalysis>> analyze_feature_sunset(Store& store, const Clock& clock,
                                                                  const SunsetConfig& config);

// Trend word for a weekly series under the config's thresholds.
UsageTrendResult classify_usage_trend(const std::vector<double>& weekly,
                                      const SunsetConfig& config);

nlohmann::json sunset_analyses_to_json(const std::vector<FeatureSunsetAnalysis>& analyses);

}  // namespace fulcrum
