#include "sunset/sunset.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "core/ids.h"
#include "store/store.h"
#include "usage/usage_history.h"

namespace fulcrum {

Status SunsetConfig::validate() const {
  if (trend_weeks < 4 || trend_weeks > 32)
    return invalid_argument("must be in [4, 32]", "trend_weeks");
  if (!(trend_max_p_value > 0 && trend_max_p_value < 1)) {
    return invalid_argument("must be in (0, 1)", "trend_max_p_value");
  }
  if (!(trend_min_weekly_change >= 0))
    return invalid_argument("must be >= 0", "trend_min_weekly_change");
  if (trend_min_weeks < 3 || trend_min_weeks > trend_weeks) {
    return invalid_argument("must be in [3, trend_weeks]", "trend_min_weeks");
  }
  if (dependency_weeks < 1 || dependency_weeks > trend_weeks) {
    return invalid_argument("must be in [1, trend_weeks]", "dependency_weeks");
  }
  if (dependency_min_weeks_used < 1 || dependency_min_weeks_used > dependency_weeks) {
    return invalid_argument("must be in [1, dependency_weeks]", "dependency_min_weeks_used");
  }
  if (!(low_share >= 0 && low_share <= core_share && core_share <= 1)) {
    return invalid_argument("need 0 <= low_share <= core_share <= 1", "low_share");
  }
  if (!(expected_revenue_loss_rate >= 0 && expected_revenue_loss_rate <= 1)) {
    return invalid_argument("must be in [0, 1]", "expected_revenue_loss_rate");
  }
  if (revenue_days < 1) return invalid_argument("must be >= 1", "revenue_days");
  if (notice_days < 0) return invalid_argument("must be >= 0", "notice_days");
  if (max_alternatives < 0) return invalid_argument("must be >= 0", "max_alternatives");
  return Status::ok();
}

UsageTrendResult classify_usage_trend(const std::vector<double>& weekly,
                                      const SunsetConfig& config) {
  UsageTrendResult trend;
  trend.theil_sen = theil_sen(weekly);
  trend.mann_kendall = mann_kendall(weekly);
  double mean = weekly.empty() ? 0.0
                               : std::accumulate(weekly.begin(), weekly.end(), 0.0) /
                                     static_cast<double>(weekly.size());
  trend.relative_weekly_change = mean > 0 ? trend.theil_sen.slope / mean : 0.0;
  // Both a significant monotone trend (Mann-Kendall) and a material robust
  // slope.
  if (trend.mann_kendall.p_value < config.trend_max_p_value) {
    if (trend.relative_weekly_change <= -config.trend_min_weekly_change) {
      trend.direction = "declining";
    } else if (trend.relative_weekly_change >= config.trend_min_weekly_change) {
      trend.direction = "growing";
    }
  }
  return trend;
}

Result<SunsetInput> load_sunset_input(Store& store, UnixSeconds now, const SunsetConfig& config) {
  FULCRUM_RETURN_IF_ERROR(config.validate());
  const int weeks = config.trend_weeks;
  // Whole UTC days (usage/usage_history.h): the last week is the 7 days ending at the
  // last midnight at or before `now`.
  const UsageDay end_day = analysis_end_day(now);
  const UsageDay first_day = end_day - 7 * weeks;
  const UnixSeconds window_start = usage_day_start(first_day);
  SunsetInput input;
  input.now = now;
  auto earliest = store.earliest_event_time();
  if (!earliest.is_ok()) return earliest.status();
  if (*earliest > window_start) {
    // Counting the weeks before the data begins as zero would make every feature "grow".
    constexpr UnixSeconds kWeek = 7 * kSecondsPerDay;
    const UnixSeconds weeks_before_data = (*earliest - window_start + kWeek - 1) / kWeek;
    input.first_full_week = static_cast<int>(std::min<UnixSeconds>(weeks, weeks_before_data));
  }
  auto features = store.list_features();
  if (!features) return features.status();
  input.features = std::move(*features);
  const std::size_t feature_count = input.features.size();
  std::unordered_map<std::string, int> feature_index;
  for (std::size_t f = 0; f < feature_count; ++f) {
    feature_index.emplace(input.features[f].name, static_cast<int>(f));
  }
  std::vector<int> feature_of_key;  // store feature key -> catalog index (-1: not in it)
  FULCRUM_RETURN_IF_ERROR(store.scan_feature_keys([&](std::uint32_t key, const std::string& name) {
    if (key >= feature_of_key.size()) feature_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
    auto it = feature_index.find(name);
    feature_of_key[key] = it == feature_index.end() ? -1 : it->second;
  }));

  std::unordered_map<std::string, int> user_index;
  std::vector<bool> paying;
  FULCRUM_RETURN_IF_ERROR(store.scan_users([&](const User& user) {
    auto [it, inserted] = user_index.try_emplace(user.user_id, static_cast<int>(paying.size()));
    if (inserted) paying.push_back(user.tier != Tier::kFree);
  }));
  // Users with events but no users row count as free users.
  std::vector<int> user_of_key;
  FULCRUM_RETURN_IF_ERROR(store.scan_user_keys([&](std::uint32_t key, const std::string& id) {
    if (key >= user_of_key.size()) user_of_key.resize(static_cast<std::size_t>(key) + 1, -1);
    auto [it, inserted] = user_index.try_emplace(id, static_cast<int>(paying.size()));
    if (inserted) paying.push_back(false);
    user_of_key[key] = it->second;
  }));
  user_index.clear();
  // Per-user state is indexed by store key (one key per user with events; users without
  // events have no rows and count nowhere below): rows arrive in (day, key) order, so each
  // day's rows sweep these arrays in order, where an index by user made every row a cache
  // miss at a million users.
  const std::size_t keys = user_of_key.size();
  auto known = [&](std::uint32_t key) { return key < keys && user_of_key[key] >= 0; };
  // Week bitmasks: bit w set when active in week w (0 = oldest); features key-major.
  std::vector<std::uint32_t> active_weeks(keys, 0);
  std::vector<std::uint32_t> feature_weeks(keys * feature_count, 0);
  std::vector<std::int64_t> revenue(keys, 0);
  const UsageDay revenue_from = end_day - config.revenue_days;
  const UsageDay scan_from = std::min(first_day, revenue_from);
  // The two tables fill disjoint arrays.
  FULCRUM_RETURN_IF_ERROR(scan_day_rollups_at_once(
      store, RollupQuery{scan_from, end_day, std::nullopt},
      [&](const UserDayRollup& row) {
        if (!known(row.user_key)) return;
        if (row.day >= revenue_from) revenue[row.user_key] += row.amount_succeeded_minor;
        if (row.day >= first_day && (row.sessions > 0 || row.usage_events > 0)) {
          active_weeks[row.user_key] |= std::uint32_t{1} << ((row.day - first_day) / 7);
        }
      },
      RollupQuery{first_day, end_day, std::nullopt},
      [&](const FeatureDayRollup& row) {
        if (row.uses <= 0 || !known(row.user_key)) return;
        const int f =
            row.feature_key < feature_of_key.size() ? feature_of_key[row.feature_key] : -1;
        if (f < 0) return;
        feature_weeks[static_cast<std::size_t>(row.user_key) * feature_count +
                      static_cast<std::size_t>(f)] |= std::uint32_t{1}
                                                      << ((row.day - first_day) / 7);
      }));

  input.weekly_active_users_total.assign(weeks, 0);
  for (std::uint32_t mask : active_weeks) {
    for (int w = 0; w < weeks; ++w) input.weekly_active_users_total[w] += (mask >> w) & 1U;
  }
  const int recent_shift = weeks - config.dependency_weeks;
  input.per_feature.resize(feature_count);
  std::vector<std::int64_t> recent_users(feature_count, 0);
  std::vector<std::int64_t> pair_counts(feature_count * feature_count, 0);
  std::vector<int> recent_features;
  for (std::size_t key = 0; key < keys; ++key) {
    if (user_of_key[key] < 0) continue;
    const bool user_pays = paying[static_cast<std::size_t>(user_of_key[key])];
    recent_features.clear();
    for (std::size_t f = 0; f < feature_count; ++f) {
      std::uint32_t mask = feature_weeks[key * feature_count + f];
      if (mask == 0) continue;
      auto& per = input.per_feature[f];
      if (per.weekly_users.empty()) per.weekly_users.assign(weeks, 0);
      for (int w = 0; w < weeks; ++w) per.weekly_users[w] += (mask >> w) & 1U;
      ++per.users_in_window;
      std::uint32_t recent = mask >> recent_shift;
      if (recent != 0) recent_features.push_back(static_cast<int>(f));
      if (std::popcount(recent) >= config.dependency_min_weeks_used) {
        ++per.dependent_users;
        if (user_pays) {
          ++per.dependent_paying_users;
          per.dependent_revenue_minor += revenue[key];
        }
      }
    }
    for (int f : recent_features) {
      ++recent_users[f];
      for (int g : recent_features) {
        if (g != f) ++pair_counts[static_cast<std::size_t>(f) * feature_count + g];
      }
    }
  }
  for (std::size_t f = 0; f < feature_count; ++f) {
    auto& per = input.per_feature[f];
    if (per.weekly_users.empty()) per.weekly_users.assign(weeks, 0);
    per.co_usage.assign(feature_count, 0.0);
    for (std::size_t g = 0; g < feature_count; ++g) {
      std::int64_t both = pair_counts[f * feature_count + g];
      std::int64_t either = recent_users[f] + recent_users[g] - both;
      per.co_usage[g] = g != f && either > 0 ? static_cast<double>(both) / either : 0.0;
    }
  }
  return input;
}

namespace {

std::string percent(double fraction) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f%%", fraction * 100);
  return buffer;
}

}  // namespace

Result<std::vector<FeatureSunsetAnalysis>> analyze_feature_sunset(const SunsetInput& input,
                                                                  const SunsetConfig& config) {
  FULCRUM_RETURN_IF_ERROR(config.validate());
  const std::size_t feature_count = input.features.size();
  if (input.per_feature.size() != feature_count) {
    return invalid_argument("per_feature must match features", "per_feature");
  }
  if (input.weekly_active_users_total.size() != static_cast<std::size_t>(config.trend_weeks)) {
    return invalid_argument("must have trend_weeks entries", "weekly_active_users_total");
  }
  if (input.first_full_week < 0 || input.first_full_week > config.trend_weeks) {
    return invalid_argument("must be in [0, trend_weeks]", "first_full_week");
  }
  const std::int64_t actives_last_week = input.weekly_active_users_total.back();
  std::vector<FeatureSunsetAnalysis> analyses(feature_count);
  for (std::size_t f = 0; f < feature_count; ++f) {
    const Feature& feature = input.features[f];
    const auto& per = input.per_feature[f];
    if (per.weekly_users.size() != static_cast<std::size_t>(config.trend_weeks)) {
      return invalid_argument("must have trend_weeks entries",
                              "per_feature." + feature.name + ".weekly_users");
    }
    FeatureSunsetAnalysis& analysis = analyses[f];
    analysis.feature_name = feature.name;
    analysis.sunset_id =
        "sunset_" + sha256_hex(feature.name + "|" + format_date(input.now)).substr(0, 16);
    auto& usage = analysis.current_usage;
    usage.weekly_history = per.weekly_users;
    usage.weekly_active_users = per.weekly_users.back();
    usage.share_of_active_users =
        actives_last_week > 0 ? static_cast<double>(usage.weekly_active_users) / actives_last_week
                              : 0.0;
    usage.dependent_users = per.dependent_users;
    usage.dependent_paying_users = per.dependent_paying_users;
    usage.users_last_trend_window = per.users_in_window;
    std::vector<double> series(per.weekly_users.begin() + input.first_full_week,
                               per.weekly_users.end());
    if (static_cast<int>(series.size()) >= config.trend_min_weeks) {
      analysis.usage_trend = classify_usage_trend(series, config);
    }
    analysis.usage_trend.weeks_observed = static_cast<int>(series.size());
    if (analysis.usage_trend.weeks_observed < config.trend_min_weeks) {
      analysis.reasons.push_back("only " + std::to_string(series.size()) +
                                 " full weeks of history: trend not assessed");
    }
    // The catalog's money value per adopting user and month when it has one, else the
    // dependents' own payments (docs/sunset.md).
    analysis.revenue_impact =
        Money::from_minor(feature.monthly_revenue_value_minor > 0
                              ? per.dependent_paying_users * feature.monthly_revenue_value_minor
                              : per.dependent_revenue_minor);
    analysis.maintenance_cost = Money::from_minor(feature.monthly_maintenance_cost_minor);

    // Rules (docs/sunset.md), first match wins.
    const std::string& direction = analysis.usage_trend.direction;
    const double share = usage.share_of_active_users;
    const double expected_loss = static_cast<double>(analysis.revenue_impact.minor_units) *
                                 config.expected_revenue_loss_rate;
    const bool costs_more_than_it_earns =
        static_cast<double>(feature.monthly_maintenance_cost_minor) > expected_loss;
    auto& reasons = analysis.reasons;
    std::string& verdict = analysis.sunset_recommendation;
    if (per.users_in_window == 0) {
      verdict = costs_more_than_it_earns ? "sunset" : "monitor";
      reasons.push_back("no usage in the last " + std::to_string(config.trend_weeks) + " weeks");
    } else if (direction == "growing") {
      verdict = "keep";
      reasons.push_back("usage is growing");
    } else if (direction != "declining" && share >= config.core_share) {
      verdict = "keep";
      reasons.push_back("core feature: used by " + percent(share) + " of weekly active users");
    } else if (direction == "declining" && share < config.core_share && costs_more_than_it_earns) {
      verdict = "sunset";
      reasons.push_back("usage is declining and used by only " + percent(share) +
                        " of weekly active users");
      reasons.push_back("maintenance cost exceeds the expected revenue loss");
    } else if (direction == "declining") {
      verdict = "deprecate";
      reasons.push_back("usage is declining");
      if (share >= config.core_share) reasons.push_back("still used by " + percent(share));
      if (!costs_more_than_it_earns) {
        reasons.push_back("expected revenue loss exceeds maintenance cost");
      }
    } else if (share < config.low_share && costs_more_than_it_earns) {
      verdict = "monitor";
      reasons.push_back("niche (" + percent(share) +
                        " of weekly actives) and costs more than it is expected to earn");
    } else {
      verdict = "keep";
      reasons.push_back("stable usage that pays for itself");
    }
    if (verdict == "sunset") {
      analysis.sunset_date =
          input.now + static_cast<UnixSeconds>(config.notice_days) * kSecondsPerDay;
    }
  }

  // Migration plans, once every verdict is known: alternatives must not be
  // going away too.
  for (std::size_t f = 0; f < feature_count; ++f) {
    FeatureSunsetAnalysis& analysis = analyses[f];
    if (analysis.sunset_recommendation != "sunset" &&
        analysis.sunset_recommendation != "deprecate") {
      continue;
    }
    const auto& per = input.per_feature[f];
    std::vector<std::size_t> candidates;
    for (std::size_t g = 0; g < feature_count; ++g) {
      const std::string& other = analyses[g].sunset_recommendation;
      if (g == f || other == "sunset" || other == "deprecate") continue;
      if (g < per.co_usage.size() && per.co_usage[g] > 0) candidates.push_back(g);
    }
    std::stable_sort(candidates.begin(), candidates.end(), [&](std::size_t a, std::size_t b) {
      // Similar by co-usage first; same category breaks ties.
      if (per.co_usage[a] != per.co_usage[b]) return per.co_usage[a] > per.co_usage[b];
      const std::string& category = input.features[f].category;
      return (input.features[a].category == category) > (input.features[b].category == category);
    });
    if (candidates.size() > static_cast<std::size_t>(config.max_alternatives)) {
      candidates.resize(static_cast<std::size_t>(config.max_alternatives));
    }
    auto& plan = analysis.migration_plan;
    const auto& usage = analysis.current_usage;
    plan.push_back("Notify " + std::to_string(usage.users_last_trend_window) + " users who used " +
                   analysis.feature_name + " in the last " + std::to_string(config.trend_weeks) +
                   " weeks (" + std::to_string(usage.dependent_users) + " depend on it, " +
                   std::to_string(usage.dependent_paying_users) + " paying)");
    for (std::size_t g : candidates) {
      char similarity[32];
      std::snprintf(similarity, sizeof(similarity), "%.2f", per.co_usage[g]);
      plan.push_back("Suggest alternative: " + input.features[g].name + " (co-usage similarity " +
                     similarity + ")");
    }
    if (candidates.empty()) plan.push_back("No co-used alternative found: offer support contact");
    plan.push_back("Announce the deprecation in-app and stop promoting " + analysis.feature_name);
    if (analysis.sunset_date) {
      plan.push_back("Remove " + analysis.feature_name + " on " +
                     format_date(*analysis.sunset_date) + " after a " +
                     std::to_string(config.notice_days) + "-day notice period");
      plan.push_back("Export user data of " + analysis.feature_name + " before removal");
    } else {
      plan.push_back("Re-run the analysis monthly; sunset when usage falls below " +
                     percent(config.low_share) + " of weekly actives");
    }
  }
  return analyses;
}

Result<std::vector<FeatureSunsetAnalysis>> analyze_feature_sunset(Store& store, const Clock& clock,
                                                                  const SunsetConfig& config) {
  auto input = load_sunset_input(store, clock.now(), config);
  if (!input) return input.status();
  return analyze_feature_sunset(*input, config);
}

nlohmann::json FeatureSunsetAnalysis::to_json() const {
  const auto& usage = current_usage;
  const auto& trend = usage_trend;
  return {
      {"sunset_id", sunset_id},
      {"feature_name", feature_name},
      // A number, as the app prints it beside usage_trend: distinct users of the feature in
      // the last 7 days (the week [now - 7d, now)); the breakdown is in current_usage_details.
      {"current_usage", usage.weekly_active_users},
      {"current_usage_details",
       {{"weekly_active_users", usage.weekly_active_users},
        {"share_of_active_users", usage.share_of_active_users},
        {"dependent_users", usage.dependent_users},
        {"dependent_paying_users", usage.dependent_paying_users},
        {"users_in_trend_window", usage.users_last_trend_window},
        {"weekly_active_users_history", usage.weekly_history}}},
      {"usage_trend", trend.direction},
      {"usage_trend_details",
       {{"method", "theil_sen_mann_kendall"},
        {"slope_users_per_week", trend.theil_sen.slope},
        {"slope_ci_95", {trend.theil_sen.slope_low, trend.theil_sen.slope_high}},
        {"relative_weekly_change", trend.relative_weekly_change},
        {"mann_kendall_s", trend.mann_kendall.s},
        {"mann_kendall_z", trend.mann_kendall.z},
        {"kendall_tau", trend.mann_kendall.tau},
        {"p_value", trend.mann_kendall.p_value},
        {"weeks_observed", trend.weeks_observed}}},
      {"revenue_impact", revenue_impact.as_major()},
      {"maintenance_cost", maintenance_cost.as_major()},
      {"sunset_recommendation", sunset_recommendation},
      {"sunset_date",
       sunset_date ? nlohmann::json(format_iso8601(*sunset_date)) : nlohmann::json()},
      {"migration_plan", migration_plan},
      {"reasons", reasons},
  };
}

nlohmann::json sunset_analyses_to_json(const std::vector<FeatureSunsetAnalysis>& analyses) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& analysis : analyses) array.push_back(analysis.to_json());
  return array;
}

}  // namespace fulcrum
