#include "optimization/dashboard.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "experiments/service.h"
#include "optimization/automated_optimization.h"
#include "recommend/outcomes.h"
#include "usage/usage_history.h"

namespace fulcrum {
namespace {

using json = nlohmann::json;

// Results are computed for at most this many running or completed tests (newest first), so
// the document stays cheap with a long history.
constexpr std::size_t kMaxTestsWithResults = 10;
constexpr std::size_t kTopFeatures = 10;
constexpr std::size_t kTopCandidates = 20;
constexpr std::size_t kMaxCampaigns = 20;
constexpr int kHistogramBins = 20;

double round4(double value) { return std::round(value * 10000.0) / 10000.0; }
double money2(double value) { return std::round(value * 100.0) / 100.0; }

json ab_test_section(AutomatedOptimization& engines) {
  json section = {{"counts_by_status", json::object()},
                  {"tests", json::array()},
                  {"results", json::object()}};
  auto tests = experiments::list_ab_tests(engines.store());
  if (!tests.is_ok()) return {{"error", tests.status().message()}};
  std::size_t with_results = 0;
  for (const experiments::Experiment& test : *tests) {
    const std::string status = experiments::status_name(test.status);
    section["counts_by_status"][status] = section["counts_by_status"].value(status, 0) + 1;
    section["tests"].push_back(experiments::to_json(test));
    const bool has_data = test.status == experiments::ExperimentStatus::kActive ||
                          test.status == experiments::ExperimentStatus::kPaused ||
                          test.status == experiments::ExperimentStatus::kCompleted;
    if (has_data && with_results < kMaxTestsWithResults) {
      ++with_results;
      auto results = engines.analyze_ab_test_results(test.test_id);
      section["results"][test.test_id] =
          results.is_ok() ? *results : json{{"error", results.status().message()}};
    }
  }
  return section;
}

json recommendation_section(AutomatedOptimization& engines) {
  auto model = engines.recommendation_service().fresh_model(engines.store(), engines.clock());
  if (!model.is_ok()) return {{"error", model.status().message()}};
  const RecommendationModel& current = **model;
  struct FeatureTally {
    std::int64_t recommendations = 0;
    std::map<std::string, std::int64_t> by_type;
    double confidence_sum = 0;
    double expected_value = 0;
  };
  std::map<std::string, FeatureTally> features;
  json counts = json::object();
  for (int t = 0; t < kRecommendationTypeCount; ++t) {
    counts[recommendation_type_name(static_cast<RecommendationType>(t))] = 0;
  }
  std::int64_t with_recommendations = 0, total = 0;
  for (const std::string& user_id : current.user_ids()) {
    auto recommendations = current.recommend(user_id);
    if (!recommendations.is_ok()) continue;
    if (!recommendations->empty()) ++with_recommendations;
    for (const FeatureRecommendation& r : *recommendations) {
      const char* type = recommendation_type_name(r.recommendation_type);
      counts[type] = counts[type].get<std::int64_t>() + 1;
      FeatureTally& tally = features[r.feature_name];
      ++tally.recommendations;
      ++tally.by_type[type];
      tally.confidence_sum += r.confidence_score;
      tally.expected_value += r.expected_value.as_major();
      ++total;
    }
  }
  std::vector<std::pair<std::string, FeatureTally>> ranked(features.begin(), features.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second.recommendations != b.second.recommendations
               ? a.second.recommendations > b.second.recommendations
               : a.first < b.first;
  });
  json top = json::array();
  for (std::size_t i = 0; i < ranked.size() && i < kTopFeatures; ++i) {
    const auto& [name, tally] = ranked[i];
    top.push_back({{"feature_name", name},
                   {"recommendations", tally.recommendations},
                   {"by_type", tally.by_type},
                   {"mean_confidence", round4(tally.confidence_sum /
                                              static_cast<double>(tally.recommendations))},
                   {"expected_value_total", money2(tally.expected_value)}});
  }
  json section = {{"model_trained_at", format_iso8601(current.trained_at())},
                  {"ease_lambda", current.ease_lambda()},
                  {"users", current.user_count()},
                  {"users_with_recommendations", with_recommendations},
                  {"recommendations", total},
                  {"counts_by_type", std::move(counts)},
                  {"top_features", std::move(top)}};
  // Measured: what became of the recommendations a model made one window ago.
  auto history = UsageHistory::open(
      engines.store(), UsageLoadOptions{.to_day = analysis_end_day(current.trained_at())});
  if (!history.is_ok()) {
    section["outcomes"] = {{"error", history.status().message()}};
    return section;
  }
  auto outcomes = measure_recommendation_outcomes(*history, current.trained_at(),
                                                  engines.options().recommend);
  section["outcomes"] =
      outcomes.is_ok() ? outcomes->to_json() : json{{"error", outcomes.status().message()}};
  return section;
}

json upgrade_timing_section(AutomatedOptimization& engines) {
  auto model = engines.upgrade_timing_service().fresh_model(engines.store(), engines.clock());
  if (!model.is_ok()) return {{"error", model.status().message()}};
  const UpgradeTimingModel& current = **model;
  const UnixSeconds now = current.trained_at();
  // Every free user's timing from one walk over the rollups the model was trained on, a
  // slice of users at a time. Per user only today's propensity is kept (8 bytes, for the
  // histogram and the mean); the top candidates are kept as they are found.
  auto history = open_upgrade_history(engines.store(), now, engines.options().upgrade_timing);
  if (!history.is_ok()) return {{"error", history.status().message()}};
  struct Timing {
    int user = -1;  // index into the history
    double confidence_score = 0, propensity_today = 0;
    std::optional<UnixSeconds> optimal_upgrade_date;
    int days_until_optimal = 0;
  };
  auto user_id = [&](const Timing& t) -> const std::string& {
    return history->user_id(t.user);
  };
  auto ranks_before = [&](const Timing& a, const Timing& b) {
    return a.confidence_score != b.confidence_score ? a.confidence_score > b.confidence_score
                                                    : user_id(a) < user_id(b);
  };
  // By user index (NaN: not a free user), so the mean sums in the users' order.
  std::vector<double> propensity_by_user(static_cast<std::size_t>(history->user_count()),
                                         std::numeric_limits<double>::quiet_NaN());
  std::vector<Timing> top;  // the best kTopCandidates so far, best first
  std::int64_t free_users = 0, this_week = 0;
  Status scanned = history->for_each_slice([&](std::span<const int> users) {
    for (int u : users) {
      if (history->current_tier(u) != Tier::kFree) continue;
      const User user = history->user(u);
      auto timing = current.timing_for(*history, user.user_id);
      const UpgradeTiming t =
          timing.is_ok() ? std::move(*timing) : current.timing_for_new_user(user);
      ++free_users;
      propensity_by_user[static_cast<std::size_t>(u)] = t.propensity_today;
      if (t.optimal_upgrade_date && *t.optimal_upgrade_date < now + 7 * kSecondsPerDay) {
        ++this_week;
      }
      const Timing candidate{u, t.confidence_score, t.propensity_today, t.optimal_upgrade_date,
                             t.days_until_optimal};
      if (top.size() == kTopCandidates && !ranks_before(candidate, top.back())) continue;
      top.insert(std::upper_bound(top.begin(), top.end(), candidate, ranks_before), candidate);
      if (top.size() > kTopCandidates) top.pop_back();
    }
    return Status::ok();
  });
  if (!scanned.is_ok()) return {{"error", scanned.message()}};

  double max_propensity = 0, sum_propensity = 0;
  for (double p : propensity_by_user) {
    if (std::isnan(p)) continue;
    max_propensity = std::max(max_propensity, p);
    sum_propensity += p;
  }
  // Bins cover [0, upper) with upper the maximum rounded up to a multiple of 0.05.
  const double upper = std::max(0.05, std::ceil(max_propensity / 0.05) * 0.05);
  const double width = upper / kHistogramBins;
  std::vector<std::int64_t> bins(kHistogramBins, 0);
  for (double p : propensity_by_user) {
    if (!std::isnan(p)) ++bins[std::clamp(static_cast<int>(p / width), 0, kHistogramBins - 1)];
  }
  json histogram = json::array();
  for (int b = 0; b < kHistogramBins; ++b) {
    histogram.push_back({{"from", round4(b * width)}, {"to", round4((b + 1) * width)},
                         {"users", bins[b]}});
  }
  json top_json = json::array();
  for (const Timing& t : top) {
    top_json.push_back(
        {{"user_id", user_id(t)},
         {"optimal_upgrade_date",
          t.optimal_upgrade_date ? json(format_iso8601(*t.optimal_upgrade_date)) : json()},
         {"confidence_score", round4(t.confidence_score)},
         {"propensity_today", round4(t.propensity_today)},
         {"days_until_optimal", t.days_until_optimal}});
  }
  const UpgradePropensityModel& propensity = current.propensity();
  json calibration = json::array();
  const auto& bounds = propensity.calibration.upper_bounds();
  const auto& rates = propensity.calibration.rates();
  for (std::size_t i = 0; i < rates.size(); ++i) {
    calibration.push_back({{"score_up_to", i < bounds.size() ? json(bounds[i]) : json()},
                           {"observed_rate", rates[i]}});
  }
  return {{"model_trained_at", format_iso8601(now)},
          {"free_users", free_users},
          {"optimal_this_week", this_week},
          {"week", {{"from", format_iso8601(now)},
                    {"to", format_iso8601(now + 7 * kSecondsPerDay)}}},
          {"mean_propensity",
           free_users == 0 ? 0.0 : round4(sum_propensity / static_cast<double>(free_users))},
          {"propensity_histogram", {{"bin_width", width}, {"bins", std::move(histogram)}}},
          {"model", {{"evaluation", propensity.evaluation.to_json()},
                     {"holdout_calibration", std::move(calibration)}}},
          {"top_candidates", std::move(top_json)}};
}

json retention_section(AutomatedOptimization& engines) {
  auto campaigns = engines.list_retention_campaigns();
  if (!campaigns.is_ok()) return {{"error", campaigns.status().message()}};
  json items = json::array();
  json by_trigger = json::object();
  std::int64_t targeted = 0, held_out = 0;
  for (const RetentionCampaign& campaign : *campaigns) {
    const std::string trigger = trigger_type_name(campaign.trigger_type);
    by_trigger[trigger] = by_trigger.value(trigger, 0) + 1;
    targeted += static_cast<std::int64_t>(campaign.target_users.size());
    held_out += static_cast<std::int64_t>(campaign.holdout_users.size());
    if (items.size() >= kMaxCampaigns) continue;
    json item = {{"campaign_id", campaign.campaign_id},
                 {"campaign_name", campaign.campaign_name},
                 {"trigger_type", trigger},
                 {"campaign_type", campaign.campaign_type},
                 {"campaign_status", campaign.campaign_status},
                 {"created_at", format_iso8601(campaign.created_at)},
                 {"targeted", campaign.target_users.size()},
                 {"held_out", campaign.holdout_users.size()}};
    auto results = campaign_results(engines.store(), engines.clock(), campaign.campaign_id,
                                    engines.options().retention.alpha);
    if (results.is_ok()) {
      item["results"] = results->to_json();
    } else {
      item["results"] = {{"error", results.status().message()}};
    }
    items.push_back(std::move(item));
  }
  return {{"campaigns", std::move(items)},
          {"totals",
           {{"campaigns", campaigns->size()},
            {"targeted", targeted},
            {"held_out", held_out},
            {"by_trigger", std::move(by_trigger)}}}};
}

json sunset_section(AutomatedOptimization& engines) {
  auto analyses = engines.analyze_feature_sunset();
  if (!analyses.is_ok()) return {{"error", analyses.status().message()}};
  json counts = json::object();
  json candidates = json::array();
  Money at_risk, saved;
  for (const FeatureSunsetAnalysis& a : *analyses) {
    counts[a.sunset_recommendation] = counts.value(a.sunset_recommendation, 0) + 1;
    if (a.sunset_recommendation != "sunset" && a.sunset_recommendation != "deprecate") continue;
    at_risk = at_risk + a.revenue_impact;
    saved = saved + a.maintenance_cost;
    candidates.push_back(
        {{"sunset_id", a.sunset_id},
         {"feature_name", a.feature_name},
         {"sunset_recommendation", a.sunset_recommendation},
         {"current_usage", a.current_usage.weekly_active_users},
         {"usage_trend", a.usage_trend.direction},
         {"revenue_at_risk", a.revenue_impact.as_major()},
         {"cost_saved", a.maintenance_cost.as_major()},
         {"sunset_date", a.sunset_date ? json(format_iso8601(*a.sunset_date)) : json()}});
  }
  return {{"features", analyses->size()},
          {"counts_by_recommendation", std::move(counts)},
          {"candidates", std::move(candidates)},
          {"revenue_at_risk", at_risk.as_major()},
          {"cost_saved", saved.as_major()}};
}

}  // namespace

const char* dashboard_section_name(DashboardSection section) {
  switch (section) {
    case DashboardSection::kAbTests:
      return "ab_tests";
    case DashboardSection::kRecommendations:
      return "recommendations";
    case DashboardSection::kUpgradeTiming:
      return "upgrade_timing";
    case DashboardSection::kRetention:
      return "retention";
    case DashboardSection::kSunset:
      return "sunset";
  }
  return "unknown";
}

json compute_dashboard_section(AutomatedOptimization& engines, DashboardSection section) {
  const UnixSeconds started = engines.clock().now();
  json out;
  switch (section) {
    case DashboardSection::kAbTests:
      out = ab_test_section(engines);
      break;
    case DashboardSection::kRecommendations:
      out = recommendation_section(engines);
      break;
    case DashboardSection::kUpgradeTiming:
      out = upgrade_timing_section(engines);
      break;
    case DashboardSection::kRetention:
      out = retention_section(engines);
      break;
    case DashboardSection::kSunset:
      out = sunset_section(engines);
      break;
  }
  out["computed_at"] = format_iso8601(started);
  return out;
}

DashboardCache::DashboardCache(AutomatedOptimization& engines, std::chrono::milliseconds max_age)
    : engines_(engines), max_age_(max_age), worker_([this] { refresher(); }) {}

DashboardCache::~DashboardCache() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void DashboardCache::invalidate(DashboardSection section) {
  std::lock_guard lock(mutex_);
  slots_[static_cast<int>(section)].value.reset();
}

json DashboardCache::document() {
  json document = {{"generated_at", format_iso8601(engines_.clock().now())}};
  for (int s = 0; s < kDashboardSectionCount; ++s) {
    const auto section = static_cast<DashboardSection>(s);
    Slot& slot = slots_[s];
    std::optional<json> cached;
    {
      std::lock_guard lock(mutex_);
      if (slot.value) {
        cached = slot.value;
        if (std::chrono::steady_clock::now() - slot.computed_at >= max_age_ && !slot.refreshing) {
          slot.refreshing = true;
          queue_.push_back(s);
          wake_.notify_one();
        }
      }
    }
    if (!cached) {
      std::lock_guard computing(slot.computing);
      {
        std::lock_guard lock(mutex_);
        cached = slot.value;  // another caller may have computed it meanwhile
      }
      if (!cached) {
        json value = compute_dashboard_section(engines_, section);
        std::lock_guard lock(mutex_);
        slot.value = value;
        slot.computed_at = std::chrono::steady_clock::now();
        cached = std::move(value);
      }
    }
    document[dashboard_section_name(section)] = std::move(*cached);
  }
  return document;
}

void DashboardCache::refresher() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    const int s = queue_.front();
    queue_.pop_front();
    lock.unlock();
    json value = compute_dashboard_section(engines_, static_cast<DashboardSection>(s));
    lock.lock();
    slots_[s].value = std::move(value);
    slots_[s].computed_at = std::chrono::steady_clock::now();
    slots_[s].refreshing = false;
  }
}

}  // namespace fulcrum
