#include "experiments/cupac.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "stats/cupac.h"
#include "stats/cuped.h"
#include "stats/hypothesis.h"
#include "store/store.h"
#include "usage/activity_before.h"

namespace fulcrum::experiments {
namespace {

using json = nlohmann::json;

constexpr std::uint32_t kFolds = 5;
constexpr int kUsageWindowDays = 28;
// The metric's own windows before exposure; the first two together are plain CUPED's
// pre-period (kCupedPrePeriod, 14 days).
constexpr std::array<UnixSeconds, 5> kMetricWindowEdges = {
    0, 7 * kSecondsPerDay, 14 * kSecondsPerDay, 28 * kSecondsPerDay, 56 * kSecondsPerDay};
constexpr std::array<const char*, 12> kFeatureNames = {
    "metric_0_7d",      "metric_7_14d",           "metric_14_28d",       "metric_28_56d",
    "active_days_28d",  "sessions_28d",           "session_minutes_28d", "feature_uses_28d",
    "paywall_hits_28d", "payments_succeeded_28d", "payments_failed_28d", "amount_paid_28d"};
constexpr std::size_t kFeatures = kFeatureNames.size();

json effect(const stats::EffectTest& t) {
  auto number = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  return {{"estimate", number(t.estimate)},
          {"standard_error", number(t.standard_error)},
          {"ci", {number(t.ci.lower), number(t.ci.upper)}},
          {"p_value", number(t.p_value)}};
}

}  // namespace

std::uint32_t cupac_fold(std::string_view user_id, std::uint32_t folds) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&](std::string_view text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 0x100000001b3ULL;
    }
  };
  mix("cupac:");
  mix(user_id);
  return static_cast<std::uint32_t>(hash % folds);
}

namespace {

// One metric's report; `users` and `activity` describe the same users in the same order.
json metric_report(const Experiment& experiment, const MetricSpec& metric, double cap,
                   const ExposedUserMetric& users, const std::vector<ActivityBefore>& activity) {
  const ExperimentConfig& config = experiment.config;
  const bool binomial = metric.type == stats::MetricType::kBinomial;
  const std::size_t n = users.size();
  const std::size_t windows = kMetricWindowEdges.size() - 1;
  // The analysed value: capped like the analysis, or converted-or-not.
  auto outcome_of = [&](double value) {
    return binomial ? (value > 0 ? 1.0 : 0.0) : std::min(value, cap);
  };
  std::vector<double> features(n * kFeatures), outcome(n), cuped_covariate(n);
  std::vector<std::uint32_t> folds(n);
  for (std::size_t u = 0; u < n; ++u) {
    double* row = &features[u * kFeatures];
    for (std::size_t w = 0; w < windows; ++w) row[w] = users.pre[u * windows + w];
    const ActivityBefore& a = activity[u];
    const double usage[] = {a.active_days,     a.sessions,        a.session_minutes,
                            a.feature_uses,    a.paywall_hits,    a.payments_succeeded,
                            a.payments_failed, a.amount_succeeded};
    std::copy(std::begin(usage), std::end(usage), row + windows);
    outcome[u] = outcome_of(users.post[u]);
    cuped_covariate[u] = outcome_of(row[0] + row[1]);
    folds[u] = cupac_fold(users.user_ids[u], kFolds);
  }
  const json name = metric.name;
  auto fitted = stats::cross_fitted_predictions(
      features, kFeatures, outcome, folds,
      stats::CupacOptions{.folds = static_cast<int>(kFolds), .ridge = 1e-3});
  if (!fitted) return {{"metric", name}, {"unavailable", fitted.status().message()}};

  // Per group: the outcome's sums with each covariate.
  const std::size_t groups = users.variants.size();
  std::vector<stats::CupedStats> with_pre(groups), with_prediction(groups);
  for (std::size_t u = 0; u < n; ++u) {
    const std::size_t g = users.variant_index[u];
    for (auto* stats_of : {&with_pre[g], &with_prediction[g]}) {
      const double x = stats_of == &with_pre[g] ? cuped_covariate[u] : fitted->prediction[u];
      stats_of->post.n += 1;
      stats_of->post.sum += outcome[u];
      stats_of->post.sum_squares += outcome[u] * outcome[u];
      stats_of->pre_sum += x;
      stats_of->pre_sum_squares += x * x;
      stats_of->cross_sum += x * outcome[u];
    }
  }
  auto index_of = [&](const std::string& group) -> std::optional<std::size_t> {
    for (std::size_t g = 0; g < groups; ++g) {
      if (users.variants[g] == group) return g;
    }
    return std::nullopt;
  };
  const auto control = index_of(config.control);
  if (!control || with_pre[*control].post.n < 2) {
    return {{"metric", name}, {"unavailable", "the control group has fewer than 2 exposed users"}};
  }
  json treatments = json::array();
  for (const GroupSpec& group : config.groups) {
    if (group.name == config.control) continue;
    const auto g = index_of(group.name);
    if (!g || with_pre[*g].post.n < 2) continue;
    auto plain = stats::compare_means(with_pre[*control].post, with_pre[*g].post, config.alpha);
    auto cuped = stats::compare_cuped(with_pre[*control], with_pre[*g], config.alpha);
    auto cupac = stats::compare_cuped(with_prediction[*control], with_prediction[*g], config.alpha);
    if (!plain || !cuped || !cupac) {
      return {{"metric", name},
              {"unavailable", "no variance to compare " + group.name + " with the control"}};
    }
    const double se = plain->absolute.standard_error;
    auto reduction = [&](const stats::Comparison& c) {
      return se > 0 ? json(1 - std::pow(c.absolute.standard_error / se, 2)) : json(nullptr);
    };
    json cuped_json = effect(cuped->absolute), cupac_json = effect(cupac->absolute);
    cuped_json["variance_reduction"] = reduction(*cuped);
    cupac_json["variance_reduction"] = reduction(*cupac);
    treatments.push_back({{"group", group.name},
                          {"unadjusted", effect(plain->absolute)},
                          {"cuped", std::move(cuped_json)},
                          {"cupac", std::move(cupac_json)}});
  }
  return {{"metric", name},
          {"type", stats::metric_type_name(metric.type)},
          {"capped_at", std::isfinite(cap) && !binomial ? json(cap) : json(nullptr)},
          {"users", n},
          {"features", kFeatureNames},
          {"folds", kFolds},
          {"cuped_pre_period_days", 14},
          {"cross_validated_r2", fitted->cross_validated_r2},
          {"treatments", std::move(treatments)}};
}

}  // namespace

Result<json> cupac_report(Store& store, const Experiment& experiment,
                          const std::map<std::string, double>& caps) {
  json reports = json::array();
  for (const MetricSpec& metric : experiment.config.success_metrics) {
    if (metric.type != stats::MetricType::kBinomial &&
        metric.type != stats::MetricType::kContinuous) {
      continue;
    }
    auto read =
        store.exposed_user_metric(experiment.exposure_key(), metric.name, kMetricWindowEdges);
    if (!read) return read.status();
    // Read per metric: a backend returns the users in no particular order.
    std::vector<UsageDay> exposure_days(read->size());
    for (std::size_t u = 0; u < read->size(); ++u) {
      exposure_days[u] = usage_day_of(read->first_exposure_at[u]);
    }
    auto activity = activity_before(store, read->user_keys, exposure_days, kUsageWindowDays);
    if (!activity) return activity.status();
    auto cap = caps.find(metric.name);
    reports.push_back(metric_report(experiment, metric, cap == caps.end() ? INFINITY : cap->second,
                                    *read, *activity));
  }
  return json{{"metrics", std::move(reports)}};
}

}  // namespace fulcrum::experiments
