#include "lifecycle/upgrade_timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/ids.h"
#include "store/model_document_store.h"

namespace fulcrum {
namespace {

constexpr double kMinReasonContribution = 0.05;  // in log-odds
constexpr int kTrendDays = 14;                   // trends are projected for two weeks at most
constexpr double kWorthPushing = 0.02;           // below this peak chance, do not push yet

std::string percent(double p) { return fmt::format("{:.1f}%", 100.0 * p); }

std::string reason_text(int feature, const EngagementCounts& c) {
  switch (feature) {
    case kActiveDays28:
      return fmt::format("Active on {} of the last 28 days", c.active_days_28);
    case kSessionTrend:
      return fmt::format("{} sessions in the last 14 days vs {} in the 14 days before",
                         c.sessions_14, c.sessions_prev_14);
    case kPaywallHits14: {
      std::string text = fmt::format("Hit the paywall {} times in the last 14 days", c.paywall_14);
      if (!c.paywalled_features.empty()) {
        text += " (on " + c.paywalled_features[0];
        if (c.paywalled_features.size() > 1) text += ", " + c.paywalled_features[1];
        text += ")";
      }
      return text;
    }
    case kPaywallHitsPrev14:
      return fmt::format("Hit the paywall {} times in the 14 days before that", c.paywall_prev_14);
    case kUsageVolume28:
      return fmt::format("Used features {} times in the last 28 days", c.usage_28);
    case kTransactions28:
      return fmt::format("{} successful payments in the last 28 days", c.transactions_28);
    case kFailedPayments28:
      return fmt::format("{} failed payments in the last 28 days", c.failed_payments_28);
    case kTenureDays:
      return fmt::format("Customer for {:.0f} days", c.tenure_days);
    case kDistinctFeatures28:
      return fmt::format("Uses {} different features", c.distinct_features_28);
    default:
      return "";
  }
}

std::vector<std::string> risk_factors(const EngagementCounts& c, Tier tier) {
  std::vector<std::string> risks;
  if (c.active_days_28 == 0) {
    risks.push_back("No activity in the last 28 days (churn risk)");
  } else if (c.sessions_prev_14 >= 2 && c.sessions_14 < 0.5 * c.sessions_prev_14) {
    risks.push_back(fmt::format("Sessions fell from {} to {} in the last two weeks (churn risk)",
                                c.sessions_prev_14, c.sessions_14));
  }
  if (c.usage_prev_28 >= 2 && c.usage_28 < 0.5 * c.usage_prev_28) {
    risks.push_back(
        fmt::format("Feature use fell from {} to {} between the last two 28-day periods",
                    c.usage_prev_28, c.usage_28));
  }
  if (c.failed_payments_28 > 0) {
    risks.push_back(fmt::format("{} failed payments in the last 28 days", c.failed_payments_28));
  }
  if (tier == Tier::kPlus) {
    risks.push_back(
        "The model learnt from free-to-paid upgrades; for a plus user it is an "
        "approximation");
  }
  return risks;
}

}  // namespace

nlohmann::json UpgradeTiming::to_json() const {
  return nlohmann::json{
      {"timing_id", timing_id},
      {"user_id", user_id},
      {"current_tier", tier_name(current_tier)},
      {"optimal_upgrade_date", optimal_upgrade_date
                                   ? nlohmann::json(format_iso8601(*optimal_upgrade_date))
                                   : nlohmann::json()},
      {"confidence_score", std::round(confidence_score * 10000.0) / 10000.0},
      {"propensity_today", std::round(propensity_today * 10000.0) / 10000.0},
      {"days_until_optimal", days_until_optimal},
      {"upgrade_reasons", upgrade_reasons},
      {"risk_factors", risk_factors},
      {"recommendation", recommendation},
  };
}

EngagementCounts project_engagement(const EngagementCounts& now, int days) {
  EngagementCounts c = now;
  double span = static_cast<double>(std::min(days, kTrendDays)) / kTrendDays;
  double session_growth = std::clamp((now.sessions_14 + 1) / (now.sessions_prev_14 + 1), 0.5, 2.0);
  double paywall_growth = std::clamp((now.paywall_14 + 1) / (now.paywall_prev_14 + 1), 0.5, 2.0);
  double s = std::pow(session_growth, span), p = std::pow(paywall_growth, span);
  c.sessions_14 *= s;
  c.sessions_prev_14 *= s;
  c.active_days_28 = std::min(28.0, c.active_days_28 * s);
  c.usage_28 *= s;
  c.usage_prev_28 *= s;
  c.paywall_14 *= p;
  c.paywall_prev_14 *= p;
  c.tenure_days += days;
  return c;
}

UsageLoadOptions upgrade_history_window(UnixSeconds now, const UpgradeTimingOptions& options) {
  UsageLoadOptions window;
  const UsageDay end = analysis_end_day(now);
  const auto horizon_days =
      static_cast<UsageDay>((options.propensity.horizon + kSecondsPerDay - 1) / kSecondsPerDay);
  // The oldest snapshot is snapshots x horizon before now; its features read 56 days back.
  window.from_day = end - options.propensity.snapshots * horizon_days - 56;
  window.to_day = end;
  return window;
}

Result<UsageHistory> open_upgrade_history(Store& store, UnixSeconds now,
                                          const UpgradeTimingOptions& options) {
  return UsageHistory::open(store, upgrade_history_window(now, options), kUpgradeKeysPerSlice);
}

Result<UpgradeTimingModel> UpgradeTimingModel::train(const UsageHistory& history, UnixSeconds now,
                                                     const UpgradeTimingOptions& options) {
  if (options.lookahead_days < 1) return invalid_argument("must be >= 1", "lookahead_days");
  if (!(options.near_peak_share > 0 && options.near_peak_share <= 1)) {
    return invalid_argument("must be in (0, 1]", "near_peak_share");
  }
  auto propensity = train_upgrade_propensity(history, now, options.propensity);
  if (!propensity.is_ok()) return propensity.status();
  UpgradeTimingModel model;
  model.trained_at_ = now;
  model.options_ = options;
  model.propensity_ = std::make_shared<const UpgradePropensityModel>(std::move(propensity).value());
  return model;
}

double UpgradeTimingModel::projected_propensity(const EngagementCounts& counts, int days) const {
  return propensity_->probability(upgrade_features(project_engagement(counts, days)));
}

Result<UpgradeTiming> UpgradeTimingModel::timing_for(const UsageHistory& history,
                                                     const std::string& user_id) const {
  int user = history.find_user(user_id);
  if (user < 0) return not_found("unknown user: " + user_id);
  return answer(user_id, history.tier_at(user, trained_at_),
                engagement_counts(history, user, trained_at_));
}

UpgradeTiming UpgradeTimingModel::timing_for_new_user(const User& user) const {
  EngagementCounts counts;
  counts.tenure_days = static_cast<double>(trained_at_ - user.signup_at) / kSecondsPerDay;
  return answer(user.user_id, user.tier, counts);
}

UpgradeTiming UpgradeTimingModel::answer(const std::string& user_id, Tier tier,
                                         const EngagementCounts& counts) const {
  UpgradeTiming timing;
  timing.user_id = user_id;
  timing.current_tier = tier;
  timing.timing_id =
      "timing_" + sha256_hex(fmt::format("{}|{}", user_id, trained_at_)).substr(0, 16);
  if (timing.current_tier == Tier::kPremium) {
    timing.confidence_score = 1.0;
    timing.recommendation = "Already on the top tier (premium): there is no upgrade to time";
    return timing;
  }
  std::vector<double> by_day(static_cast<std::size_t>(options_.lookahead_days));
  for (int d = 0; d < options_.lookahead_days; ++d) by_day[d] = projected_propensity(counts, d);
  double peak = *std::max_element(by_day.begin(), by_day.end());
  int best = 0;
  if (by_day[0] < options_.near_peak_share * peak) {
    // Earliest day within 1% of the peak: later days add waiting without adding chance.
    while (by_day[best] < 0.99 * peak) ++best;
  }
  timing.days_until_optimal = best;
  timing.optimal_upgrade_date = floor_to_day(trained_at_) + best * kSecondsPerDay;
  timing.confidence_score = by_day[best];
  timing.propensity_today = by_day[0];

  const LogisticModel& logistic = propensity_->logistic;
  Eigen::VectorXd x = upgrade_features(counts);
  std::vector<std::pair<double, int>> contributions;
  for (int j = 0; j < kUpgradeFeatureCount; ++j) {
    double z = (x[j] - logistic.mean[j]) / logistic.scale[j];
    contributions.push_back({logistic.coefficients[j] * z, j});
  }
  std::sort(contributions.rbegin(), contributions.rend());
  for (const auto& [contribution, j] : contributions) {
    if (contribution < kMinReasonContribution || timing.upgrade_reasons.size() >= 3) break;
    timing.upgrade_reasons.push_back(reason_text(j, counts));
  }
  timing.risk_factors = risk_factors(counts, timing.current_tier);

  const double base = propensity_->evaluation.train_upgrade_rate;
  std::string offer = counts.paywalled_features.empty()
                          ? std::string("the upgrade offer")
                          : "the upgrade offer for " + counts.paywalled_features[0];
  if (peak < std::max(kWorthPushing, base)) {
    timing.recommendation = fmt::format(
        "Do not push an upgrade yet: the projected 7-day upgrade chance peaks at {} (typical free "
        "user: {}); nurture engagement first",
        percent(peak), percent(base));
  } else if (best == 0) {
    timing.recommendation = fmt::format(
        "Show {} now: the 7-day upgrade chance is {}, near its projected peak ({} for "
        "a typical free user)",
        offer, percent(by_day[0]), percent(base));
  } else {
    timing.recommendation = fmt::format(
        "Wait {} days and show {} on {}: the 7-day upgrade chance is projected to rise from {} "
        "to {}",
        best, offer, format_date(*timing.optimal_upgrade_date), percent(by_day[0]),
        percent(by_day[best]));
  }
  return timing;
}

Result<UpgradeTiming> optimize_upgrade_timing(Store& store, const Clock& clock,
                                              const std::string& user_id,
                                              const UpgradeTimingOptions& options) {
  auto user = store.get_user(user_id);
  if (!user.is_ok()) return user.status();
  if (!user->has_value()) return not_found("unknown user: " + user_id);
  const UnixSeconds now = clock.now();
  auto history = open_upgrade_history(store, now, options);
  if (!history.is_ok()) return history.status();
  auto model = UpgradeTimingModel::train(*history, now, options);
  if (!model.is_ok()) return model.status();
  // The streamed history holds no rows after training: the user's own are read alone.
  auto user_history = UsageHistory::load_user(store, user_id, upgrade_history_window(now, options));
  if (!user_history.is_ok()) return user_history.status();
  auto timing = model->timing_for(*user_history, user_id);
  if (timing.is_ok()) return timing;
  return model->timing_for_new_user(**user);
}

Result<UpgradeEvaluation> evaluate_upgrade_timing(Store& store, UnixSeconds now,
                                                  const UpgradePropensityOptions& options) {
  UpgradeTimingOptions timing_options;
  timing_options.propensity = options;
  auto history = open_upgrade_history(store, now, timing_options);
  if (!history.is_ok()) return history.status();
  auto model = train_upgrade_propensity(*history, now, options);
  if (!model.is_ok()) return model.status();
  return model->evaluation;
}

ModelCodec<UpgradeTimingModel> upgrade_timing_model_codec(const UpgradeTimingOptions& options) {
  return {"upgrade_timing", kUpgradeTimingModelFormat, upgrade_timing_options_fingerprint(options),
          [](const UpgradeTimingModel& model) { return model.serialize(); },
          [](std::string_view payload) { return UpgradeTimingModel::deserialize(payload); }};
}

UpgradeTimingService::UpgradeTimingService(UpgradeTimingOptions options,
                                           StoredModelHolderOptions holder_options,
                                           bool share_through_store)
    : options_(std::move(options)),
      share_through_store_(share_through_store),
      replica_id_(new_id("replica")),
      models_(upgrade_timing_model_codec(options_), std::move(holder_options)) {}

StoredModelHolder<UpgradeTimingModel>::Train UpgradeTimingService::trainer(Store& store) const {
  return [&store, options = options_](UnixSeconds now) -> Result<UpgradeTimingModel> {
    auto history = open_upgrade_history(store, now, options);
    if (!history.is_ok()) return history.status();
    return UpgradeTimingModel::train(*history, now, options);
  };
}

Status UpgradeTimingService::refresh(Store& store, UnixSeconds now) {
  DocumentModelStore shared(store, replica_id_);
  return models_.refresh(now, trainer(store), share_through_store_ ? &shared : nullptr);
}

std::shared_ptr<const UpgradeTimingModel> UpgradeTimingService::model() const {
  return models_.model();
}

Result<std::shared_ptr<const UpgradeTimingModel>> UpgradeTimingService::fresh(Store& store,
                                                                              UnixSeconds now) {
  DocumentModelStore shared(store, replica_id_);
  return models_.fresh(now, trainer(store), share_through_store_ ? &shared : nullptr);
}

Result<std::shared_ptr<const UpgradeTimingModel>> UpgradeTimingService::fresh_model(
    Store& store, const Clock& clock) {
  return fresh(store, clock.now());
}

Result<UpgradeTiming> UpgradeTimingService::for_user(Store& store, const Clock& clock,
                                                     const std::string& user_id) {
  auto model = fresh(store, clock.now());
  if (!model.is_ok()) return model.status();
  const auto& current = *model;
  // Scoring one user reads that user's rollups only.
  auto history = UsageHistory::load_user(store, user_id,
                                         upgrade_history_window(current->trained_at(), options_));
  if (!history.is_ok()) return history.status();
  return current->timing_for(*history, user_id);
}

}  // namespace fulcrum
