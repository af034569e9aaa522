#include "recommend/synthetic.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

namespace fulcrum {

EventBatch make_synthetic_usage(const SyntheticUsageOptions& options) {
  EventBatch batch;
  std::mt19937_64 rng(options.seed);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto chance = [&](double p) { return uniform(0, 1) < p; };
  auto integer = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  const char* categories[] = {"payments", "savings", "budgeting", "investing"};
  constexpr int kFeatures = 20;
  for (int f = 0; f < kFeatures; ++f) {
    Feature feature;
    feature.name = fmt::format("feature_{:02d}", f);
    feature.required_tier = f < 12 ? Tier::kFree : f < 16 ? Tier::kPlus : Tier::kPremium;
    feature.monthly_revenue_value_minor = 100 + 75 * f;
    feature.monthly_maintenance_cost_minor = 50 + 10 * f;
    feature.category = categories[f % 4];
    batch.features.push_back(feature);
  }
  // Cluster c favours free features 2+c*2.., one plus and one premium feature.
  auto in_cluster = [&](int f, int c) {
    int k = options.clusters;
    if (f < 2) return false;
    if (f < 12) return (f - 2) % k == c || (f - 2 + 1) % k == c;
    return (f - 12) % k == c;
  };
  const int days = options.days;
  auto day_time = [&](int day) {
    return options.start + static_cast<UnixSeconds>(day) * kSecondsPerDay +
           static_cast<UnixSeconds>(uniform(0, kSecondsPerDay - 1));
  };
  for (int i = 0; i < options.users; ++i) {
    User user;
    user.user_id = fmt::format("user_{:05d}", i);
    int cluster = integer(0, options.clusters - 1);
    int signup_day = chance(0.1) ? integer(days - 60, days - 10) : integer(0, days / 3);
    user.signup_at = options.start + static_cast<UnixSeconds>(signup_day) * kSecondsPerDay;
    user.country = "GB";
    user.attributes["segment"] = cluster % 2 == 0 ? "student" : "professional";
    double tier_draw = uniform(0, 1);
    Tier tier = tier_draw < 0.6 ? Tier::kFree : tier_draw < 0.85 ? Tier::kPlus : Tier::kPremium;
    int churn_day = chance(options.churner_share) && signup_day + 30 < days
                        ? integer(signup_day + 30, days - 1)
                        : days;
    int upgrade_day = days;
    Tier upgraded_tier = tier;
    if (tier == Tier::kFree && chance(options.upgrader_share) && signup_day + 21 < churn_day - 1) {
      upgrade_day = integer(signup_day + 21, churn_day - 1);
      upgraded_tier = chance(0.3) ? Tier::kPremium : Tier::kPlus;
      batch.subscription_changes.push_back({user.user_id, day_time(upgrade_day),
                                            SubscriptionChangeKind::kUpgrade, Tier::kFree,
                                            upgraded_tier});
    }
    user.tier = upgraded_tier;
    auto tier_on = [&](int day) { return day >= upgrade_day ? upgraded_tier : tier; };
    auto gap_multiplier = [&](int day) { return day >= churn_day - 21 ? 2.5 : 1.0; };

    for (int f = 0; f < kFeatures; ++f) {
      const Feature& feature = batch.features[f];
      double p_adopt = f < 2 ? 0.7 : in_cluster(f, cluster) ? 0.65 : 0.04;
      if (!chance(p_adopt)) continue;
      int adopt_day = integer(signup_day, std::max(signup_day, days - 1));
      if (feature.required_tier > tier_on(adopt_day)) {
        // Wanted it but hit the paywall; adopts after an upgrade that allows it.
        if (adopt_day < churn_day) {
          batch.paywall_hits.push_back({user.user_id, feature.name, day_time(adopt_day)});
        }
        if (upgraded_tier >= feature.required_tier && upgrade_day < days) {
          adopt_day = std::max(adopt_day, upgrade_day + integer(0, 7));
        } else {
          continue;
        }
      }
      double day = adopt_day;
      while (day < std::min(days, churn_day)) {
        int d = static_cast<int>(day);
        batch.feature_usage.push_back(
            {user.user_id, feature.name, day_time(d), static_cast<std::int32_t>(integer(1, 3))});
        day += uniform(3, 9) * gap_multiplier(d);
      }
    }
    // Sessions every 1-4 days while active, sparser before churn.
    for (double day = signup_day; day < std::min(days, churn_day);) {
      int d = static_cast<int>(day);
      batch.sessions.push_back({user.user_id, day_time(d), integer(30, 600)});
      day += uniform(1, 4) * gap_multiplier(d);
    }
    // Paywall pressure: rising before an upgrade, background noise otherwise.
    for (int d = signup_day; d < std::min({days, churn_day, upgrade_day}); ++d) {
      if (tier_on(d) == Tier::kPremium) break;
      bool ramp = upgrade_day < days && d >= upgrade_day - 14;
      double p = ramp ? 0.08 + 0.03 * (d - (upgrade_day - 14)) : 0.02;
      if (chance(p)) {
        int f = 12 + (cluster + integer(0, 1) * options.clusters) % 8;
        if (batch.features[f].required_tier > tier_on(d)) {
          batch.paywall_hits.push_back({user.user_id, batch.features[f].name, day_time(d)});
        }
      }
    }
    // Weekly card transactions; failures cluster before churn.
    for (int d = signup_day + integer(0, 6); d < std::min(days, churn_day); d += 7) {
      bool troubled = d >= churn_day - 21;
      bool ok = !chance(troubled ? 0.5 : 0.03);
      batch.payments.push_back({user.user_id, day_time(d), ok, integer(500, 20000)});
    }
    batch.users.push_back(std::move(user));
  }
  return batch;
}

}  // namespace fulcrum
