#include "demo/demo_data.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdio>

namespace fulcrum::demo {
namespace {

// --- deterministic randomness ---------------------------------------------------------------
// splitmix64 (Steele, Lea, Flood 2014) for seeding and key mixing; xoshiro256** (Blackman &
// Vigna 2018) for the streams. Integer arithmetic only, so the output is the same everywhere.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t state = a ^ (b * 0xD1B54A32D192ED03ull);
  return splitmix64(state);
}

std::uint64_t stream_key(std::uint64_t seed, std::uint64_t user, std::uint64_t day,
                         std::uint64_t purpose) {
  return mix(mix(mix(seed, user + 1), day + 1), purpose);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& word : state_) word = splitmix64(seed);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return uniform() < p; }
  // Uniform integer in [0, n) (Lemire's multiply-shift; bias < 2^-32 for our small n).
  int below(int n) {
    return static_cast<int>(((next() >> 32) * static_cast<std::uint64_t>(n)) >> 32);
  }
  // Uniform integer in [lo, hi].
  int between(int lo, int hi) { return lo + below(hi - lo + 1); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> state_{};
};

// Stream purposes, so independent decisions never share draws.
enum Purpose : std::uint64_t {
  kProfile = 1,
  kDaily = 2,
  kBilling = 3,
  kExperiment = 4,
  kDowngrade = 5,
};

// --- the bank's features ----------------------------------------------------------------------
enum Cluster : int { kNoCluster = -1, kInsights = 0, kInvesting = 1, kPayments = 2 };

struct FeatureSpec {
  const char* name;
  Tier tier;
  const char* category;
  std::int64_t monthly_cost_major;
  std::int64_t monthly_value_minor;
  Cluster cluster;
  double adoption;   // for features outside the clusters: share of users who adopt it
  double daily_use;  // probability of use on an active day for an adopter (before scaling)
};

constexpr int kFeatureCount = 20;
constexpr std::array<FeatureSpec, kFeatureCount> kFeatures = {{
    {"account_overview", Tier::kFree, "core", 4000, 50, kNoCluster, 0.95, 0.70},
    {"card_controls", Tier::kFree, "cards", 3000, 30, kNoCluster, 0.45, 0.15},
    {"p2p_payments", Tier::kFree, "payments", 6000, 60, kNoCluster, 0.40, 0.25},
    {"bill_pay", Tier::kFree, "payments", 5000, 80, kPayments, 0, 0.35},
    {"scheduled_transfers", Tier::kFree, "payments", 3500, 50, kPayments, 0, 0.25},
    {"direct_deposit_switch", Tier::kFree, "payments", 2000, 40, kPayments, 0, 0.20},
    {"budgets", Tier::kFree, "insights", 2500, 40, kInsights, 0, 0.35},
    {"spending_insights", Tier::kPlus, "insights", 4500, 120, kInsights, 0, 0.35},
    {"savings_goals", Tier::kFree, "savings", 2000, 70, kInsights, 0, 0.25},
    {"instant_savings", Tier::kFree, "savings", 3000, 90, kNoCluster, 0.40, 0.45},
    {"round_ups", Tier::kFree, "savings", 2500, 40, kNoCluster, 0.15, 0.30},
    {"investments_portfolio", Tier::kPremium, "investing", 9000, 350, kInvesting, 0, 0.40},
    {"crypto_trading", Tier::kPremium, "investing", 12000, 400, kInvesting, 0, 0.30},
    {"market_alerts", Tier::kPlus, "investing", 3000, 100, kInvesting, 0, 0.30},
    {"credit_score", Tier::kPlus, "credit", 5000, 110, kNoCluster, 0.12, 0.15},
    {"travel_insurance", Tier::kPremium, "insurance", 7000, 250, kNoCluster, 0.06, 0.08},
    {"cashback_offers", Tier::kPlus, "rewards", 6000, 150, kNoCluster, 0.15, 0.20},
    {"virtual_cards", Tier::kPremium, "cards", 4000, 180, kNoCluster, 0.10, 0.15},
    {"subscription_manager", Tier::kPremium, "insights", 3500, 120, kNoCluster, 0.08, 0.15},
    {"legacy_statements", Tier::kFree, "documents", 18000, 5, kNoCluster, 0.35, 0.45},
}};
constexpr int kInstantSavings = 9;
constexpr int kInvestmentsPortfolio = 11;
constexpr int kVirtualCards = 17;
constexpr int kLegacyStatements = 19;

// Planted magnitudes (docs/demo-data.md lists them; tests read the data, not these).
// Adopters drop out at 5.4 %/week; with churn and mid-week dropouts the weekly active users
// of legacy_statements fall by about 6 %/week.
constexpr double kLegacyWeeklyDecline = 0.054;
constexpr double kInstantWeeklyGrowth = 0.05;  // adopters grow 5 %/week
constexpr double kChurnerShare = 0.08;
constexpr int kChurnDeclineDays = 21;
constexpr double kUpgraderShareOfFree = 0.10;
constexpr int kUpgradeRampDays = 14;
constexpr double kDowngraderShareOfPremium = 0.04;
constexpr double kAbandonerShare = 0.05;
constexpr int kAbandonQuietDays = 21;
constexpr double kClusterAdoption = 0.80, kOffClusterAdoption = 0.04;
constexpr double kNewSignupShare = 0.09;

constexpr const char* kExpOnboarding = "exp_onboarding_checklist";
constexpr double kOnboardingShare = 0.40;
constexpr int kOnboardingWindowDays = 30;
constexpr double kOnboardingConversion[2] = {0.10, 0.12};  // control, variant
constexpr double kOnboardingRevenueLift = 0.05;
constexpr const char* kExpSavingsNudge = "exp_savings_nudge";
constexpr double kNudgeShare = 0.18;
constexpr int kNudgeWindowDays = 45;
constexpr double kNudgeConversion = 0.15;

constexpr std::int64_t kPriceMinor[3] = {0, 499, 1499};

// Hourly weights for session starts: quiet nights, lunch and evening peaks.
constexpr std::array<int, 24> kHourWeights = {2,  1, 1, 1, 1, 2, 4,  7,  9,  8, 7, 8,
                                              10, 9, 7, 7, 8, 9, 11, 12, 11, 9, 6, 4};

struct Profile {
  std::string user_id;
  Tier tier0 = Tier::kFree;
  int signup_day = -1;  // first day with activity (0 for users who joined before the period)
  UnixSeconds signup_at = 0;
  float activity = 0;         // probability of being active on a day
  std::uint32_t adopted = 0;  // features the user uses (or wants, when above their tier)
  std::array<float, kFeatureCount> daily_use{};
  int churn_day = INT_MAX;
  bool payment_failure_churn = false;
  int upgrade_day = INT_MAX;
  Tier upgrade_to = Tier::kFree;
  int downgrade_day = INT_MAX;  // premium -> plus
  int abandon_feature = -1, abandon_day = INT_MAX;
  int legacy_stop_day = INT_MAX, instant_start_day = 0;
  int billing_offset = 0;
  std::uint8_t country = 0, app_version = 0, segment = 0;
  // exp_onboarding_checklist
  int onboarding_day = -1, onboarding_convert_day = -1, pre_day = -1, post_day = -1;
  std::uint8_t onboarding_variant = 0;
  float pre_value = 0, post_value = 0;
  // exp_savings_nudge
  int nudge_day = -1, nudge_convert_day = -1;
  std::uint8_t nudge_variant = 0;

  Tier tier_on(int day) const {
    if (day >= churn_day) return Tier::kFree;
    if (day >= downgrade_day) return Tier::kPlus;
    return day >= upgrade_day ? upgrade_to : tier0;
  }
};

constexpr const char* kCountries[] = {"GB", "IE", "DE", "FR", "ES"};
constexpr int kCountryWeights[] = {85, 5, 4, 3, 3};
constexpr const char* kAppVersions[] = {"5.4.0", "5.3.2", "5.2.1", "4.9.8"};
constexpr int kAppVersionWeights[] = {50, 30, 15, 5};
constexpr const char* kSegments[] = {"student", "young_professional", "family", "retiree"};
constexpr int kSegmentWeights[] = {15, 35, 30, 20};
constexpr const char* kOnboardingVariants[] = {"control", "variant"};
constexpr const char* kNudgeVariants[] = {"control", "nudge_a", "nudge_b"};

template <std::size_t N>
std::uint8_t pick_weighted(Rng& rng, const int (&weights)[N]) {
  int total = 0;
  for (int w : weights) total += w;
  int draw = rng.below(total);
  for (std::size_t i = 0; i < N; ++i) {
    if (draw < weights[i]) return static_cast<std::uint8_t>(i);
    draw -= weights[i];
  }
  return 0;
}

// Deterministic variant assignment for the demo only (the experiments engine assigns live
// traffic with GrowthBook hashing): a keyed hash of the user index.
std::uint8_t demo_variant(std::uint64_t seed, const char* experiment, std::int64_t user,
                          int variants) {
  std::uint64_t key = seed;
  for (const char* c = experiment; *c; ++c) key = mix(key, static_cast<unsigned char>(*c));
  return static_cast<std::uint8_t>(mix(key, static_cast<std::uint64_t>(user)) % variants);
}

int days_until_stop(Rng& rng, double weekly_rate) {
  // Exponential survival: P(still using after w weeks) = (1 - rate)^w.
  const double weeks = -std::log(1.0 - rng.uniform()) / -std::log(1.0 - weekly_rate);
  return weeks * 7 > 1e6 ? INT_MAX : static_cast<int>(weeks * 7);
}

Profile make_profile(const DemoOptions& options, std::int64_t index, UnixSeconds start) {
  Rng rng(stream_key(options.seed, static_cast<std::uint64_t>(index), 0, kProfile));
  const int days = options.days;
  Profile p;
  char id[32];
  std::snprintf(id, sizeof id, "u%06lld", static_cast<long long>(index));
  p.user_id = id;
  const double tier_draw = rng.uniform();
  p.tier0 = tier_draw < 0.70 ? Tier::kFree : tier_draw < 0.90 ? Tier::kPlus : Tier::kPremium;
  if (rng.chance(kNewSignupShare)) {
    p.signup_day = rng.below(days);
    p.signup_at =
        start + p.signup_day * kSecondsPerDay + rng.below(static_cast<int>(kSecondsPerDay));
    p.tier0 = Tier::kFree;  // new customers start free
  } else {
    p.signup_day = 0;
    p.signup_at = start - (30 + rng.below(700)) * kSecondsPerDay -
                  rng.below(static_cast<int>(kSecondsPerDay));
  }
  const double engagement = rng.uniform();
  p.activity = static_cast<float>(0.13 + 0.55 * engagement * engagement + 0.10 * rng.uniform());
  p.country = pick_weighted(rng, kCountryWeights);
  p.app_version = pick_weighted(rng, kAppVersionWeights);
  p.segment = pick_weighted(rng, kSegmentWeights);

  // Interest clusters drive co-usage: a user in a cluster adopts most of its features.
  const bool interested[3] = {rng.chance(0.35), rng.chance(p.tier0 == Tier::kPremium ? 0.55 : 0.20),
                              rng.chance(0.40)};
  for (int f = 0; f < kFeatureCount; ++f) {
    const FeatureSpec& spec = kFeatures[f];
    double adoption = spec.cluster == kNoCluster
                          ? spec.adoption
                          : (interested[spec.cluster] ? kClusterAdoption : kOffClusterAdoption);
    if (f == kLegacyStatements && p.signup_day > 0) adoption = 0;  // new users never saw it
    if (rng.chance(adoption)) p.adopted |= 1u << f;
    p.daily_use[f] = static_cast<float>(spec.daily_use * (0.6 + 0.8 * rng.uniform()));
  }
  if (!p.adopted) p.adopted = 1u;  // everyone at least opens the account overview

  // Legacy statements: adopters drop out at a constant weekly hazard.
  p.legacy_stop_day = days_until_stop(rng, kLegacyWeeklyDecline);
  // Instant savings: the number of adopters grows 5 %/week, i.e. a user's start day is
  // days + 7 * ln(u) / ln(1.05); negative means adopted before the period began.
  p.instant_start_day = static_cast<int>(std::floor(
      days + 7.0 * std::log(1.0 - rng.uniform()) / std::log(1.0 + kInstantWeeklyGrowth)));

  p.billing_offset = rng.below(30);

  // Churners: only established users, so their decline fits inside the period.
  const int churn_lo = std::max(kChurnDeclineDays + 1, static_cast<int>(days * 0.35));
  const int churn_hi = days - 4;
  if (p.signup_day == 0 && churn_lo <= churn_hi && rng.chance(kChurnerShare)) {
    p.churn_day = rng.between(churn_lo, churn_hi);
    if (p.tier0 != Tier::kFree && rng.chance(0.5)) {
      p.payment_failure_churn = true;
      // Make sure a billing day falls 12 days before the churn day.
      p.billing_offset = ((12 - p.churn_day) % 30 + 30) % 30;
    }
  }
  // Upgraders: free users (not churners) upgrade after two weeks of rising interest.
  const int upgrade_lo = std::min(kUpgradeRampDays + 1, days - 1);
  if (p.tier0 == Tier::kFree && p.churn_day == INT_MAX && rng.chance(kUpgraderShareOfFree)) {
    p.upgrade_day = std::max(rng.between(upgrade_lo, days - 1), p.signup_day + kUpgradeRampDays);
    if (p.upgrade_day >= days) p.upgrade_day = INT_MAX;
    p.upgrade_to = rng.chance(0.4) ? Tier::kPremium : Tier::kPlus;
    if (p.upgrade_day != INT_MAX) p.billing_offset = (30 - p.upgrade_day % 30) % 30;
    // They want premium features: the paywall they keep hitting.
    p.adopted |= 1u << (rng.chance(0.6) ? kInvestmentsPortfolio : kVirtualCards);
  }
  // Abandoners: use one everyday feature heavily, then stop for the last 3+ weeks.
  if (p.churn_day == INT_MAX && p.signup_day == 0 && rng.chance(kAbandonerShare) &&
      days > kAbandonQuietDays + 7) {
    std::array<int, kFeatureCount> candidates{};
    int n = 0;
    for (int f = 0; f < kFeatureCount; ++f) {
      if ((p.adopted >> f & 1u) && f != kLegacyStatements && f != kInstantSavings &&
          kFeatures[f].tier <= p.tier0) {
        candidates[n++] = f;
      }
    }
    if (n > 0) {
      p.abandon_feature = candidates[rng.below(n)];
      const int lo = std::max(14, static_cast<int>(days * 0.4));
      const int hi = days - kAbandonQuietDays - 1;
      p.abandon_day = lo <= hi ? rng.between(lo, hi) : hi;
      p.daily_use[p.abandon_feature] = 0.85f;
    }
  }

  // Experiments (exposures only for users present and not churned on the exposure day).
  Rng exp_rng(stream_key(options.seed, static_cast<std::uint64_t>(index), 0, kExperiment));
  const int onboarding_from = std::max(0, days - kOnboardingWindowDays);
  if (exp_rng.chance(kOnboardingShare)) {
    const int day = std::max(exp_rng.between(onboarding_from, days - 1), p.signup_day);
    if (day < p.churn_day && day < days) {
      p.onboarding_day = day;
      p.onboarding_variant = demo_variant(options.seed, kExpOnboarding, index, 2);
      if (exp_rng.chance(kOnboardingConversion[p.onboarding_variant])) {
        p.onboarding_convert_day = std::min(day + exp_rng.below(8), days - 1);
      }
      // revenue_per_user: a skewed per-user spend level, observed once before exposure
      // (for CUPED) and once after, with a multiplicative lift for the variant.
      if (exp_rng.chance(0.65)) {
        const double u = exp_rng.uniform();
        const double spend = 5.0 + 60.0 * u * u;
        const int pre_gap = exp_rng.between(1, 21);
        if (day - pre_gap >= 0) {
          p.pre_day = day - pre_gap;
          p.pre_value =
              static_cast<float>(std::round(spend * (0.7 + 0.6 * exp_rng.uniform()) * 100) / 100);
        }
        p.post_day = std::min(day + exp_rng.below(15), days - 1);
        const double lift = p.onboarding_variant == 1 ? 1.0 + kOnboardingRevenueLift : 1.0;
        p.post_value = static_cast<float>(
            std::round(spend * lift * (0.7 + 0.6 * exp_rng.uniform()) * 100) / 100);
      }
    }
  }
  const int nudge_from = std::max(0, days - kNudgeWindowDays);
  if (exp_rng.chance(kNudgeShare)) {
    const int day = std::max(exp_rng.between(nudge_from, days - 1), p.signup_day);
    if (day < p.churn_day && day < days) {
      p.nudge_day = day;
      p.nudge_variant = demo_variant(options.seed, kExpSavingsNudge, index, 3);
      if (exp_rng.chance(kNudgeConversion)) {
        p.nudge_convert_day = std::min(day + exp_rng.below(11), days - 1);
      }
    }
  }
  // Downgraders: some established premium users move down to plus (their own stream, so
  // adding them changed no other draw).
  Rng downgrade_rng(stream_key(options.seed, static_cast<std::uint64_t>(index), 0, kDowngrade));
  if (p.tier0 == Tier::kPremium && p.signup_day == 0 && p.churn_day == INT_MAX &&
      p.upgrade_day == INT_MAX && days > 10 && downgrade_rng.chance(kDowngraderShareOfPremium)) {
    p.downgrade_day = downgrade_rng.between(days / 5, days - 1);
  }
  return p;
}

// FNV-1a 64 over record fields.
class Checksum {
 public:
  void add(std::string_view text) {
    for (unsigned char c : text) hash_ = (hash_ ^ c) * 0x100000001B3ull;
    hash_ = (hash_ ^ 0xFF) * 0x100000001B3ull;  // field separator
  }
  void add(std::int64_t value) {
    for (int i = 0; i < 8; ++i) {
      hash_ = (hash_ ^ static_cast<std::uint8_t>(value >> (8 * i))) * 0x100000001B3ull;
    }
  }
  std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_ = 0xCBF29CE484222325ull;
};

// Appends records to the current batch, keeps counts and the checksum, flushes when full.
class Emitter {
 public:
  Emitter(const DemoOptions& options, const std::function<Status(const EventBatch&)>& sink,
          DemoSummary& summary)
      : options_(options), sink_(sink), summary_(summary) {}

  void user(const Profile& p, Tier tier) {
    User user;
    user.user_id = p.user_id;
    user.tier = tier;
    user.signup_at = p.signup_at;
    user.country = kCountries[p.country];
    user.app_version = kAppVersions[p.app_version];
    user.attributes["segment"] = kSegments[p.segment];
    checksum_.add("user");
    checksum_.add(user.user_id);
    checksum_.add(static_cast<std::int64_t>(tier));
    checksum_.add(user.signup_at);
    checksum_.add(user.country);
    checksum_.add(user.app_version);
    checksum_.add(user.attributes["segment"]);
    batch_.users.push_back(std::move(user));
    ++summary_.users;
  }
  void feature(const Feature& feature) {
    checksum_.add(feature.name);
    checksum_.add(feature.monthly_maintenance_cost_minor);
    batch_.features.push_back(feature);
    ++summary_.features;
  }
  void usage(const std::string& user_id, int f, UnixSeconds at, int count) {
    checksum_.add(user_id);
    checksum_.add(static_cast<std::int64_t>(f));
    checksum_.add(at);
    checksum_.add(static_cast<std::int64_t>(count));
    batch_.feature_usage.push_back({user_id, kFeatures[f].name, at, count});
    ++summary_.feature_usage;
  }
  void session(const std::string& user_id, UnixSeconds at, int duration) {
    checksum_.add(user_id);
    checksum_.add(at);
    checksum_.add(static_cast<std::int64_t>(duration));
    batch_.sessions.push_back({user_id, at, duration});
    ++summary_.sessions;
  }
  void subscription(const std::string& user_id, UnixSeconds at, SubscriptionChangeKind kind,
                    Tier from, Tier to) {
    checksum_.add(user_id);
    checksum_.add(at);
    checksum_.add(static_cast<std::int64_t>(kind) * 16 + static_cast<int>(from) * 4 +
                  static_cast<int>(to));
    batch_.subscription_changes.push_back({user_id, at, kind, from, to});
    ++summary_.subscription_changes;
  }
  void payment(const std::string& user_id, UnixSeconds at, bool succeeded, std::int64_t amount) {
    checksum_.add(user_id);
    checksum_.add(at);
    checksum_.add(amount * 2 + (succeeded ? 1 : 0));
    batch_.payments.push_back({user_id, at, succeeded, amount});
    ++summary_.payments;
  }
  void paywall(const std::string& user_id, int f, UnixSeconds at) {
    checksum_.add(user_id);
    checksum_.add(static_cast<std::int64_t>(f) + 1000);
    checksum_.add(at);
    batch_.paywall_hits.push_back({user_id, kFeatures[f].name, at});
    ++summary_.paywall_hits;
  }
  void exposure(const char* experiment, const std::string& user_id, const char* variant,
                UnixSeconds at) {
    checksum_.add(experiment);
    checksum_.add(user_id);
    checksum_.add(variant);
    checksum_.add(at);
    batch_.exposures.push_back({experiment, user_id, variant, at});
    ++summary_.exposures;
  }
  void metric(const std::string& user_id, const char* metric, double value, UnixSeconds at) {
    checksum_.add(user_id);
    checksum_.add(metric);
    checksum_.add(static_cast<std::int64_t>(std::llround(value * 100)));
    checksum_.add(at);
    batch_.metric_events.push_back({user_id, metric, value, at});
    ++summary_.metric_events;
  }

  Status maybe_flush() { return batch_.size() >= options_.batch_records ? flush() : Status::ok(); }
  Status flush() {
    if (batch_.size() == 0) return Status::ok();
    FULCRUM_RETURN_IF_ERROR(sink_(batch_));
    ++summary_.batches;
    batch_.clear();
    return Status::ok();
  }
  std::uint64_t checksum() const { return checksum_.value(); }

 private:
  const DemoOptions& options_;
  const std::function<Status(const EventBatch&)>& sink_;
  DemoSummary& summary_;
  EventBatch batch_;
  Checksum checksum_;
};

UnixSeconds time_in_day(Rng& rng, UnixSeconds day_start) {
  static const int kTotal = [] {
    int total = 0;
    for (int w : kHourWeights) total += w;
    return total;
  }();
  int draw = rng.below(kTotal), hour = 0;
  while (draw >= kHourWeights[hour]) draw -= kHourWeights[hour++];
  return day_start + hour * 3600 + rng.below(3600);
}

bool billing_fails(std::uint64_t seed, std::int64_t index, int day) {
  Rng rng(stream_key(seed, static_cast<std::uint64_t>(index), static_cast<std::uint64_t>(day),
                     kBilling));
  return rng.chance(0.03);
}

// One user's events on one day.
void generate_day(const DemoOptions& options, std::int64_t index, const Profile& p, int day,
                  UnixSeconds day_start, Emitter& out) {
  if (day < p.signup_day || day > p.churn_day) return;
  Rng rng(stream_key(options.seed, static_cast<std::uint64_t>(index),
                     static_cast<std::uint64_t>(day), kDaily));
  const Tier tier = p.tier_on(day);

  // Subscription changes and billing happen whether or not the user opens the app.
  if (day == p.upgrade_day) {
    const UnixSeconds at = time_in_day(rng, day_start);
    out.subscription(p.user_id, at, SubscriptionChangeKind::kUpgrade, p.tier0, p.upgrade_to);
    out.user(p, p.upgrade_to);
    out.payment(p.user_id, at + 5, true, kPriceMinor[static_cast<int>(p.upgrade_to)]);
  }
  if (day == p.downgrade_day) {
    // A fixed time, so the day's other draws stay as they were.
    out.subscription(p.user_id, day_start + 10 * 3600 + index % 3600,
                     SubscriptionChangeKind::kDowngrade,
                     Tier::kPremium, Tier::kPlus);
    out.user(p, Tier::kPlus);
  }
  const Tier paying = p.tier_on(day);
  if (day == p.churn_day) {
    const Tier before = p.tier_on(day - 1);
    if (before != Tier::kFree) {
      out.subscription(p.user_id, day_start + 9 * 3600 + rng.below(3600),
                       SubscriptionChangeKind::kCancel, before, Tier::kFree);
      out.user(p, Tier::kFree);
    }
    return;  // gone: nothing else from the churn day on
  }
  if (paying != Tier::kFree && day != p.upgrade_day) {
    const std::int64_t price = kPriceMinor[static_cast<int>(paying)];
    const UnixSeconds billing_at = day_start + 6 * 3600 + (index % 3600);
    const bool in_failure_window =
        p.payment_failure_churn && day >= p.churn_day - kChurnDeclineDays;
    if ((day + p.billing_offset) % 30 == 0) {
      const bool failed = in_failure_window || billing_fails(options.seed, index, day);
      out.payment(p.user_id, billing_at, !failed, price);
    }
    // Retries 3 and 6 days after a failed billing: recovered at the first retry normally,
    // never for the payment-failure churners.
    for (int retry : {3, 6}) {
      const int billed = day - retry;
      if (billed < 0 || (billed + p.billing_offset) % 30 != 0) continue;
      const bool billed_in_window =
          p.payment_failure_churn && billed >= p.churn_day - kChurnDeclineDays;
      if (billed_in_window) {
        out.payment(p.user_id, billing_at, false, price);
      } else if (retry == 3 && billing_fails(options.seed, index, billed)) {
        out.payment(p.user_id, billing_at, true, price);
      }
    }
  }

  // Engagement multiplier: churners fade out over 3 weeks, upgraders warm up over 2.
  double engagement = 1.0;
  double upgrade_progress = -1;  // 0..1 inside the upgrader's ramp
  if (p.churn_day != INT_MAX && day >= p.churn_day - kChurnDeclineDays) {
    const double progress = (day - (p.churn_day - kChurnDeclineDays) + 1.0) / kChurnDeclineDays;
    engagement = 1.0 - 0.85 * progress;
  }
  if (p.upgrade_day != INT_MAX && day < p.upgrade_day && day >= p.upgrade_day - kUpgradeRampDays) {
    upgrade_progress = (day - (p.upgrade_day - kUpgradeRampDays) + 1.0) / kUpgradeRampDays;
    engagement = 1.0 + 0.6 * upgrade_progress;
  }
  if (!rng.chance(std::min(0.95, p.activity * engagement))) return;

  const int session_count = 1 + (rng.chance(0.35) ? 1 : 0) + (rng.chance(0.12) ? 1 : 0);
  std::array<UnixSeconds, 3> session_at{};
  std::array<int, 3> session_length{};
  for (int s = 0; s < session_count; ++s) {
    session_at[s] = time_in_day(rng, day_start);
    const double u = rng.uniform();
    session_length[s] = 20 + static_cast<int>(600 * u * u * std::min(1.5, engagement));
    out.session(p.user_id, session_at[s], session_length[s]);
  }
  for (int f = 0; f < kFeatureCount; ++f) {
    if (!(p.adopted >> f & 1u)) continue;
    const FeatureSpec& spec = kFeatures[f];
    if (spec.tier > tier) {
      // Wanted but locked: the paywall. Upgraders hit it more and more before upgrading.
      double hit = 0.03;
      if (upgrade_progress >= 0) hit = 0.05 + 0.55 * upgrade_progress;
      if (rng.chance(hit)) {
        const int s = rng.below(session_count);
        out.paywall(p.user_id, f, session_at[s] + rng.below(session_length[s] + 1));
      }
      continue;
    }
    if (f == kLegacyStatements && day >= p.legacy_stop_day) continue;
    if (f == kInstantSavings && day < p.instant_start_day) continue;
    if (f == p.abandon_feature && day > p.abandon_day) continue;
    if (!rng.chance(std::min(0.95, p.daily_use[f] * engagement))) continue;
    const int s = rng.below(session_count);
    out.usage(p.user_id, f, session_at[s] + rng.below(session_length[s] + 1), 1 + rng.below(3));
  }
}

// Exposures happen between 08:00 and 22:00 of the exposure day; metric events (recorded by
// other systems) at 23:00-23:50, so a same-day conversion always follows its exposure.
void generate_experiment_events(std::int64_t index, const Profile& p, int day,
                                UnixSeconds day_start, Emitter& out) {
  if (day < p.signup_day || day >= p.churn_day) return;
  const UnixSeconds exposure_at = day_start + 8 * 3600 + (index * 7919) % (14 * 3600);
  if (day == p.onboarding_day) {
    out.exposure(kExpOnboarding, p.user_id, kOnboardingVariants[p.onboarding_variant], exposure_at);
  }
  if (day == p.nudge_day) {
    out.exposure(kExpSavingsNudge, p.user_id, kNudgeVariants[p.nudge_variant], exposure_at + 60);
  }
  const UnixSeconds late = day_start + 23 * 3600 + (index % 3000);
  if (day == p.onboarding_convert_day) out.metric(p.user_id, "conversion_rate", 1.0, late);
  if (day == p.pre_day) out.metric(p.user_id, "revenue_per_user", p.pre_value, late);
  if (day == p.post_day) out.metric(p.user_id, "revenue_per_user", p.post_value, late);
  if (day == p.nudge_convert_day) out.metric(p.user_id, "savings_goal_created", 1.0, late);
}

}  // namespace

std::vector<Feature> demo_features() {
  std::vector<Feature> features;
  for (const FeatureSpec& spec : kFeatures) {
    features.push_back({spec.name, spec.tier, spec.monthly_cost_major * 100,
                        spec.monthly_value_minor, spec.category});
  }
  return features;
}

Result<DemoSummary> generate_demo_data(const DemoOptions& options,
                                       const std::function<Status(const EventBatch&)>& sink) {
  if (options.users < 1 || options.users > 10'000'000) {
    return invalid_argument("users must be between 1 and 10000000", "users");
  }
  if (options.days < 28 || options.days > 3650) {
    return invalid_argument("days must be between 28 and 3650", "days");
  }
  if (options.batch_records < 1) return invalid_argument("batch_records must be positive");
  DemoSummary summary;
  summary.end = options.end;
  summary.start = options.end - static_cast<UnixSeconds>(options.days) * kSecondsPerDay;
  Emitter out(options, sink, summary);

  std::vector<Profile> profiles;
  profiles.reserve(static_cast<std::size_t>(options.users));
  for (std::int64_t i = 0; i < options.users; ++i) {
    profiles.push_back(make_profile(options, i, summary.start));
    const Profile& p = profiles.back();
    if (p.churn_day != INT_MAX) {
      summary.truth.churners.push_back(
          {p.user_id, p.churn_day, p.tier0 != Tier::kFree, p.payment_failure_churn});
    }
    if (p.upgrade_day != INT_MAX) {
      summary.truth.upgraders.push_back({p.user_id, p.upgrade_day, p.upgrade_to});
    }
    if (p.abandon_feature >= 0) {
      summary.truth.abandonments.push_back(
          {p.user_id, kFeatures[p.abandon_feature].name, p.abandon_day});
    }
  }
  for (const Feature& feature : demo_features()) out.feature(feature);
  for (const Profile& p : profiles) {
    out.user(p, p.tier0);
    FULCRUM_RETURN_IF_ERROR(out.maybe_flush());
  }
  for (int day = 0; day < options.days; ++day) {
    const UnixSeconds day_start = summary.start + day * kSecondsPerDay;
    for (std::int64_t i = 0; i < options.users; ++i) {
      generate_day(options, i, profiles[static_cast<std::size_t>(i)], day, day_start, out);
      generate_experiment_events(i, profiles[static_cast<std::size_t>(i)], day, day_start, out);
      FULCRUM_RETURN_IF_ERROR(out.maybe_flush());
    }
  }
  FULCRUM_RETURN_IF_ERROR(out.flush());
  summary.checksum = out.checksum();
  return summary;
}

}  // namespace fulcrum::demo
