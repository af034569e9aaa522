#include "lifecycle/retention_triggers.h"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <initializer_list>
#include <span>

namespace fulcrum {

const char* trigger_type_name(TriggerType type) {
  switch (type) {
    case TriggerType::kUsageDrop:
      return "usage_drop";
    case TriggerType::kEngagementDecline:
      return "engagement_decline";
    case TriggerType::kPaymentIssue:
      return "payment_issue";
    case TriggerType::kFeatureAbandonment:
      return "feature_abandonment";
    case TriggerType::kChurnRisk:
      return "churn_risk";
  }
  return "unknown";
}

std::optional<TriggerType> parse_trigger_type(std::string_view name) {
  for (TriggerType type : all_trigger_types()) {
    if (name == trigger_type_name(type)) return type;
  }
  return std::nullopt;
}

const std::vector<TriggerType>& all_trigger_types() {
  // Priority: a billing problem is the most actionable, then the model's overall risk,
  // then the specific behavioural signals.
  static const std::vector<TriggerType> types = {
      TriggerType::kPaymentIssue, TriggerType::kChurnRisk, TriggerType::kUsageDrop,
      TriggerType::kEngagementDecline, TriggerType::kFeatureAbandonment};
  return types;
}

Status RetentionTriggerConfig::validate() const {
  if (usage_drop_recent_days < 1) return invalid_argument("must be >= 1", "usage_drop_recent_days");
  if (usage_drop_baseline_days < usage_drop_recent_days) {
    return invalid_argument("must be >= usage_drop_recent_days", "usage_drop_baseline_days");
  }
  if (!(usage_drop_min_drop > 0 && usage_drop_min_drop <= 1)) {
    return invalid_argument("must be in (0, 1]", "usage_drop_min_drop");
  }
  if (!(usage_drop_min_baseline_weekly >= 0)) {
    return invalid_argument("must be >= 0", "usage_drop_min_baseline_weekly");
  }
  if (engagement_weeks < 3) return invalid_argument("must be >= 3", "engagement_weeks");
  if (!(engagement_max_p_value > 0 && engagement_max_p_value < 1)) {
    return invalid_argument("must be in (0, 1)", "engagement_max_p_value");
  }
  if (!(engagement_min_relative_decline >= 0)) {
    return invalid_argument("must be >= 0", "engagement_min_relative_decline");
  }
  if (!(engagement_min_mean_weekly >= 0)) {
    return invalid_argument("must be >= 0", "engagement_min_mean_weekly");
  }
  if (payment_lookback_days < 1) return invalid_argument("must be >= 1", "payment_lookback_days");
  if (payment_recovery_days < 0 || payment_recovery_days >= payment_lookback_days) {
    return invalid_argument("must be in [0, payment_lookback_days)", "payment_recovery_days");
  }
  if (abandon_regular_weeks < 1) return invalid_argument("must be >= 1", "abandon_regular_weeks");
  if (abandon_min_weeks_used < 1 || abandon_min_weeks_used > abandon_regular_weeks) {
    return invalid_argument("must be in [1, abandon_regular_weeks]", "abandon_min_weeks_used");
  }
  if (abandon_idle_days < 1) return invalid_argument("must be >= 1", "abandon_idle_days");
  if (!(churn_risk_threshold > 0 && churn_risk_threshold < 1)) {
    return invalid_argument("must be in (0, 1)", "churn_risk_threshold");
  }
  FULCRUM_RETURN_IF_ERROR(churn.validate());
  if (enabled.empty()) return invalid_argument("at least one trigger must be enabled", "enabled");
  return Status::ok();
}

int RetentionTriggerConfig::history_days() const {
  int days = usage_drop_baseline_days + usage_drop_recent_days;
  days = std::max(days, engagement_weeks * 7);
  days = std::max(days, payment_lookback_days);
  days = std::max(days, abandon_regular_weeks * 7 + abandon_idle_days);
  days = std::max(days, churn.feature_days + churn.label_days);
  return days;
}

SlopeTest ols_slope_test(const std::vector<double>& y) {
  const std::size_t n = y.size();
  SlopeTest result;
  if (n < 3) return result;
  double mean_x = (static_cast<double>(n) - 1) / 2.0, mean_y = 0;
  for (double v : y) mean_y += v;
  mean_y /= static_cast<double>(n);
  double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double dx = static_cast<double>(i) - mean_x;
    sxx += dx * dx;
    sxy += dx * (y[i] - mean_y);
  }
  result.slope = sxy / sxx;
  double intercept = mean_y - result.slope * mean_x;
  double sse = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double residual = y[i] - (intercept + result.slope * static_cast<double>(i));
    sse += residual * residual;
  }
  const double df = static_cast<double>(n) - 2;
  double standard_error = std::sqrt(sse / df / sxx);
  if (!(standard_error > 0)) {
    // A perfect line: any non-zero slope is certain, a flat one carries no evidence.
    result.p_value = result.slope != 0 ? 0.0 : 1.0;
    return result;
  }
  // Slope t statistic with n-2 degrees of freedom (e.g. Draper & Smith, Applied
  // Regression Analysis, 3rd ed., section 1.4).
  double t = result.slope / standard_error;
  boost::math::students_t distribution(df);
  result.p_value = 2.0 * boost::math::cdf(boost::math::complement(distribution, std::fabs(t)));
  return result;
}

std::optional<TriggerMatch> detect_usage_drop(const UserActivity& activity, int user,
                                              const RetentionTriggerConfig& config) {
  const int end = activity.days();
  const int recent_from = end - config.usage_drop_recent_days;
  const int baseline_from = recent_from - config.usage_drop_baseline_days;
  if (baseline_from < 0) return std::nullopt;
  // Normalise both periods to a rate per 7 days so recent and baseline compare directly.
  double baseline_weekly =
      static_cast<double>(activity.activity_sum(user, baseline_from, recent_from)) * 7.0 /
      config.usage_drop_baseline_days;
  if (baseline_weekly < config.usage_drop_min_baseline_weekly || baseline_weekly <= 0) {
    return std::nullopt;
  }
  double recent_weekly = static_cast<double>(activity.activity_sum(user, recent_from, end)) * 7.0 /
                         config.usage_drop_recent_days;
  double drop = 1.0 - recent_weekly / baseline_weekly;
  if (drop + 1e-12 < config.usage_drop_min_drop) return std::nullopt;
  return TriggerMatch{user, drop, ""};
}

std::optional<TriggerMatch> detect_engagement_decline(const UserActivity& activity, int user,
                                                      const RetentionTriggerConfig& config) {
  const int weeks = config.engagement_weeks;
  const int start = activity.days() - weeks * 7;
  if (start < 0) return std::nullopt;
  std::vector<double> weekly(static_cast<std::size_t>(weeks));
  double total = 0;
  for (int w = 0; w < weeks; ++w) {
    weekly[w] = static_cast<double>(activity.activity_sum(user, start + w * 7, start + w * 7 + 7));
    total += weekly[w];
  }
  double mean = total / weeks;
  if (mean < config.engagement_min_mean_weekly || mean <= 0) return std::nullopt;
  SlopeTest test = ols_slope_test(weekly);
  if (test.slope >= 0 || test.p_value >= config.engagement_max_p_value) return std::nullopt;
  // Fitted decline from first to last week relative to the mean weekly activity.
  double relative_decline = -test.slope * (weeks - 1) / mean;
  if (relative_decline < config.engagement_min_relative_decline) return std::nullopt;
  return TriggerMatch{user, test.p_value, ""};
}

std::optional<TriggerMatch> detect_payment_issue(const UserActivity& activity, int user,
                                                 const RetentionTriggerConfig& config) {
  const UnixSeconds now = activity.now();
  const UnixSeconds lookback_start = now - config.payment_lookback_days * kSecondsPerDay;
  const UnixSeconds settled_before = now - config.payment_recovery_days * kSecondsPerDay;
  const auto& payments = activity.payments(user);
  // Walk backwards: a failure is unrecovered when no success follows it (up to now).
  bool success_after = false;
  int unrecovered = 0;
  UnixSeconds oldest_unrecovered = 0;
  for (auto it = payments.rbegin(); it != payments.rend(); ++it) {
    if (it->at < lookback_start) break;
    if (it->succeeded) {
      success_after = true;
      break;  // everything earlier was recovered by this success
    }
    if (it->at <= settled_before) {
      ++unrecovered;
      oldest_unrecovered = it->at;
    }
  }
  (void)success_after;
  if (unrecovered == 0) return std::nullopt;
  return TriggerMatch{user, static_cast<double>(unrecovered),
                      "failed since " + format_iso8601(oldest_unrecovered)};
}

std::optional<TriggerMatch> detect_feature_abandonment(const UserActivity& activity, int user,
                                                       const RetentionTriggerConfig& config) {
  const int idle_from = activity.days() - config.abandon_idle_days;
  const int regular_from = idle_from - config.abandon_regular_weeks * 7;
  if (regular_from < 0) return std::nullopt;
  // Still a customer: abandoning one feature while leaving altogether is churn, not this.
  if (activity.active_days(user, idle_from, activity.days()) == 0) return std::nullopt;
  std::optional<TriggerMatch> best;
  for (int feature = 0; feature < activity.feature_count(); ++feature) {
    if (!activity.used_feature_ever(user, feature)) continue;
    if (activity.used_feature_between(user, feature, idle_from, activity.days())) continue;
    int weeks_used = 0, days_used = 0;
    for (int w = 0; w < config.abandon_regular_weeks; ++w) {
      int from = regular_from + w * 7;
      weeks_used += activity.used_feature_between(user, feature, from, from + 7) ? 1 : 0;
      for (int d = from; d < from + 7; ++d) days_used += activity.used_feature(user, feature, d);
    }
    if (weeks_used < config.abandon_min_weeks_used) continue;
    // The most habitually used abandoned feature is the one worth a reminder.
    double score = static_cast<double>(days_used) / (config.abandon_regular_weeks * 7);
    if (!best || score > best->score) {
      best = TriggerMatch{user, score, activity.feature_name(feature)};
    }
  }
  return best;
}

Result<TriggerMatches> detect_retention_triggers(const UserActivity& activity,
                                                 const RetentionTriggerConfig& config) {
  FULCRUM_RETURN_IF_ERROR(config.validate());
  if (activity.days() < config.history_days()) {
    return invalid_argument("activity window shorter than the triggers need", "history_days");
  }
  TriggerMatches matches;
  auto enabled = [&](TriggerType type) {
    return std::find(config.enabled.begin(), config.enabled.end(), type) != config.enabled.end();
  };
  for (TriggerType type : config.enabled) matches[type];
  // The churn model's rows are collected in the same walk as the behavioural triggers, so
  // the store is read once; the model is fitted after the walk (it needs every user).
  std::optional<ChurnDatasetBuilder> churn_train, churn_current;
  if (enabled(TriggerType::kChurnRisk)) {
    churn_train.emplace(activity.user_count(), activity.days() - config.churn.label_days,
                        config.churn, true);
    churn_current.emplace(activity.user_count(), activity.days(), config.churn, false);
  }
  using Detector = std::optional<TriggerMatch> (*)(const UserActivity&, int,
                                                   const RetentionTriggerConfig&);
  std::vector<std::pair<TriggerType, Detector>> detectors;
  for (auto [type, detector] : std::initializer_list<std::pair<TriggerType, Detector>>{
           {TriggerType::kUsageDrop, &detect_usage_drop},
           {TriggerType::kEngagementDecline, &detect_engagement_decline},
           {TriggerType::kPaymentIssue, &detect_payment_issue},
           {TriggerType::kFeatureAbandonment, &detect_feature_abandonment}}) {
    if (enabled(type)) detectors.emplace_back(type, detector);
  }
  FULCRUM_RETURN_IF_ERROR(activity.for_each_slice([&](std::span<const int> users) {
    for (int user : users) {
      for (const auto& [type, detector] : detectors) {
        if (auto match = detector(activity, user, config)) matches[type].push_back(*match);
      }
      if (churn_train) {
        churn_train->add(activity, user);
        churn_current->add(activity, user);
      }
    }
    return Status::ok();
  }));
  // Slices come in store-key order: each list goes back to user order.
  for (auto& [type, list] : matches) {
    std::sort(list.begin(), list.end(),
              [](const TriggerMatch& a, const TriggerMatch& b) { return a.user < b.user; });
  }
  if (churn_train) {
    auto scored = score_churn_risk(std::move(*churn_train).finish(),
                                   std::move(*churn_current).finish(), config.churn);
    if (!scored) return scored.status();
    auto& list = matches[TriggerType::kChurnRisk];
    for (const auto& [user, probability] : *scored) {
      if (probability >= config.churn_risk_threshold) list.push_back({user, probability, ""});
    }
  }
  return matches;
}

}  // namespace fulcrum
