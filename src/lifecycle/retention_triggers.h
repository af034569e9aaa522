// The five retention triggers, as pure functions of a UserActivity window. Thresholds live
// in RetentionTriggerConfig (defaults documented in docs/retention.md). A user may match
// several triggers; detect_retention_triggers reports every match, and campaign creation
// assigns each user to one campaign only (see retention_campaigns.h).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "lifecycle/churn_model.h"
#include "usage/user_activity.h"

namespace fulcrum {

enum class TriggerType {
  kUsageDrop,
  kEngagementDecline,
  kPaymentIssue,
  kFeatureAbandonment,
  kChurnRisk,
};
const char* trigger_type_name(TriggerType type);
std::optional<TriggerType> parse_trigger_type(std::string_view name);
// All five, in priority order: when a user matches several, the first one wins.
const std::vector<TriggerType>& all_trigger_types();

struct RetentionTriggerConfig {
  // usage_drop: activity in the last `recent_days` vs the weekly average of the
  // `baseline_days` before them; fires when the drop is at least `min_drop` and the
  // baseline averaged at least `min_baseline_weekly` events per 7 days.
  int usage_drop_recent_days = 7;
  int usage_drop_baseline_days = 28;
  double usage_drop_min_drop = 0.5;
  double usage_drop_min_baseline_weekly = 5.0;

  // engagement_decline: OLS slope of weekly activity over the last `weeks` weeks is
  // negative with a two-sided t-test p-value below `max_p_value`, and the fitted decline
  // over the window is at least `min_relative_decline` of the mean weekly activity.
  int engagement_weeks = 8;
  double engagement_max_p_value = 0.05;
  double engagement_min_relative_decline = 0.3;
  double engagement_min_mean_weekly = 2.0;

  // payment_issue: a failed payment in the last `payment_lookback_days` with no later
  // successful payment, at least `payment_recovery_days` after the failure (so automatic
  // retries had their chance).
  int payment_lookback_days = 30;
  int payment_recovery_days = 3;

  // feature_abandonment: a feature used in at least `abandon_min_weeks_used` of the
  // `abandon_regular_weeks` weeks before the idle period, then not at all for the last
  // `abandon_idle_days` days while the user is still around (active in those days).
  int abandon_regular_weeks = 4;
  int abandon_min_weeks_used = 3;
  int abandon_idle_days = 14;

  // churn_risk: predicted probability of no activity in the next churn.label_days days
  // at least `churn_risk_threshold`, among users active in the last label_days.
  double churn_risk_threshold = 0.5;
  ChurnModelConfig churn;

  std::vector<TriggerType> enabled = all_trigger_types();

  Status validate() const;
  // Days of activity history the enabled triggers read.
  int history_days() const;
};

struct TriggerMatch {
  int user = 0;        // UserActivity index
  double score = 0;    // trigger-specific strength: drop fraction, p-value, probability, ...
  std::string detail;  // e.g. the abandoned feature name
};

// Matches per trigger type (each list sorted by user index, one entry per user).
using TriggerMatches = std::map<TriggerType, std::vector<TriggerMatch>>;

Result<TriggerMatches> detect_retention_triggers(const UserActivity& activity,
                                                 const RetentionTriggerConfig& config);

// Individual detectors, exposed for tests: the match for one user, if any.
std::optional<TriggerMatch> detect_usage_drop(const UserActivity& activity, int user,
                                              const RetentionTriggerConfig& config);
std::optional<TriggerMatch> detect_engagement_decline(const UserActivity& activity, int user,
                                                      const RetentionTriggerConfig& config);
std::optional<TriggerMatch> detect_payment_issue(const UserActivity& activity, int user,
                                                 const RetentionTriggerConfig& config);
std::optional<TriggerMatch> detect_feature_abandonment(const UserActivity& activity, int user,
                                                       const RetentionTriggerConfig& config);

// OLS fit of y on 0..n-1 with the two-sided p-value of the slope's t statistic (n-2 df).
struct SlopeTest {
  double slope = 0;
  double p_value = 1;
};
SlopeTest ols_slope_test(const std::vector<double>& y);

}  // namespace fulcrum
