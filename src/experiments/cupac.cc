#include "experiments/cupac.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "experiments/results_json.h"
#include "experiments/service.h"
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
// pre-period (kCupedPrePeriod).
constexpr std::array<UnixSeconds, 5> kMetricWindowEdges = {
    0, 7 * kSecondsPerDay, 14 * kSecondsPerDay, 28 * kSecondsPerDay, 56 * kSecondsPerDay};
constexpr std::array<const char*, 12> kFeatureNames = {
    "metric_0_7d",      "metric_7_14d",           "metric_14_28d",       "metric_28_56d",
    "active_days_28d",  "sessions_28d",           "session_minutes_28d", "feature_uses_28d",
    "paywall_hits_28d", "payments_succeeded_28d", "payments_failed_28d", "amount_paid_28d"};
constexpr std::size_t kFeatures = kFeatureNames.size();
static_assert(kMetricWindowEdges[2] == kCupedPrePeriod);

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
  auto add = [](stats::CupedStats& s, double y, double x) {
    s.post.n += 1;
    s.post.sum += y;
    s.post.sum_squares += y * y;
    s.pre_sum += x;
    s.pre_sum_squares += x * x;
    s.cross_sum += x * y;
  };
  for (std::size_t u = 0; u < n; ++u) {
    const std::size_t g = users.variant_index[u];
    add(with_pre[g], outcome[u], cuped_covariate[u]);
    add(with_prediction[g], outcome[u], fitted->prediction[u]);
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
    json cuped_json = effect_json(cuped->absolute), cupac_json = effect_json(cupac->absolute);
    cuped_json["variance_reduction"] = reduction(*cuped);
    cupac_json["variance_reduction"] = reduction(*cupac);
    treatments.push_back({{"group", group.name},
                          {"unadjusted", effect_json(plain->absolute)},
                          {"cuped", std::move(cuped_json)},
                          {"cupac", std::move(cupac_json)}});
  }
  return {{"metric", name},
          {"type", stats::metric_type_name(metric.type)},
          {"capped_at", std::isfinite(cap) && !binomial ? json(cap) : json(nullptr)},
          {"users", n},
          {"features", kFeatureNames},
          {"folds", kFolds},
          {"cuped_pre_period_days", kCupedPrePeriod / kSecondsPerDay},
          {"cross_validated_r2", fitted->cross_validated_r2},
          {"treatments", std::move(treatments)}};
}

}  // namespace

Result<json> cupac_report(Store& store, const Experiment& experiment,
                          const std::map<std::string, double>& caps) {
  json reports = json::array();
  // A user's activity before their first exposure is the same for every metric: each user's
  // is scanned once, by rollup key, the first time a read returns them (a backend returns the
  // users in no particular order).
  std::vector<ActivityBefore> activity_known;
  std::vector<std::uint32_t> known_of_key;  // rollup key -> index in activity_known + 1
  for (const MetricSpec& metric : experiment.config.success_metrics) {
    if (metric.type != stats::MetricType::kBinomial &&
        metric.type != stats::MetricType::kContinuous) {
      continue;
    }
    auto read =
        store.exposed_user_metric(experiment.exposure_key(), metric.name, kMetricWindowEdges);
    if (!read) return read.status();
    std::vector<std::uint32_t> new_keys;
    std::vector<UsageDay> new_days;
    for (std::size_t u = 0; u < read->size(); ++u) {
      const std::uint32_t key = read->user_keys[u];
      if (key == kNoRollupKey) continue;
      if (key >= known_of_key.size()) known_of_key.resize(key + 1, 0);
      if (known_of_key[key] != 0) continue;
      known_of_key[key] = static_cast<std::uint32_t>(activity_known.size() + new_keys.size() + 1);
      new_keys.push_back(key);
      new_days.push_back(usage_day_of(read->first_exposure_at[u]));
    }
    if (!new_keys.empty()) {
      auto scanned = activity_before(store, new_keys, new_days, kUsageWindowDays);
      if (!scanned) return scanned.status();
      activity_known.insert(activity_known.end(), scanned->begin(), scanned->end());
    }
    std::vector<ActivityBefore> activity(read->size());  // zeros for users without a key
    for (std::size_t u = 0; u < read->size(); ++u) {
      const std::uint32_t key = read->user_keys[u];
      if (key != kNoRollupKey) activity[u] = activity_known[known_of_key[key] - 1];
    }
    auto cap = caps.find(metric.name);
    reports.push_back(metric_report(experiment, metric, cap == caps.end() ? INFINITY : cap->second,
                                    *read, activity));
  }
  return json{{"metrics", std::move(reports)}};
}

}  // namespace fulcrum::experiments
