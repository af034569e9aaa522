#include "store/rollup.h"

#include <algorithm>
#include <tuple>

namespace fulcrum {
namespace {

constexpr std::size_t kMaxExamples = 10;

std::string describe(const UserDayRollup& row) {
  return "user_key " + std::to_string(row.user_key) + " day " +
         format_date(usage_day_start(row.day)) + " (sessions " + std::to_string(row.sessions) +
         ", uses " + std::to_string(row.uses) + ", payments " +
         std::to_string(row.payments_succeeded) + "/" + std::to_string(row.payments_failed) +
         ", paywall hits " + std::to_string(row.paywall_hits) + ")";
}

std::string describe(const FeatureDayRollup& row) {
  return "user_key " + std::to_string(row.user_key) + " feature_key " +
         std::to_string(row.feature_key) + " day " + format_date(usage_day_start(row.day)) +
         " (uses " + std::to_string(row.uses) + ", paywall hits " +
         std::to_string(row.paywall_hits) + ")";
}

std::string describe(const TierChangeRollup& row) {
  return "user_key " + std::to_string(row.user_key) + " at " + format_iso8601(row.at) + " " +
         tier_name(row.from_tier) + " -> " + tier_name(row.to_tier);
}

auto key_of(const UserDayRollup& r) { return std::tuple(r.day, r.user_key); }
auto key_of(const FeatureDayRollup& r) { return std::tuple(r.day, r.user_key, r.feature_key); }
auto key_of(const TierChangeRollup& r) {
  return std::tuple(r.user_key, r.at, static_cast<int>(r.kind), static_cast<int>(r.from_tier),
                    static_cast<int>(r.to_tier));
}

void note(RollupVerification& report, std::string text) {
  ++report.mismatches;
  if (report.examples.size() < kMaxExamples) report.examples.push_back(std::move(text));
}

// Merge-compares two key-sorted row lists.
template <typename Row>
void compare_sorted(const std::vector<Row>& stored, const std::vector<Row>& recomputed,
                    const char* table, RollupVerification& report) {
  std::size_t s = 0, r = 0;
  while (s < stored.size() || r < recomputed.size()) {
    if (r == recomputed.size() ||
        (s < stored.size() && key_of(stored[s]) < key_of(recomputed[r]))) {
      note(report, std::string(table) + ": stored row without events: " + describe(stored[s++]));
    } else if (s == stored.size() || key_of(recomputed[r]) < key_of(stored[s])) {
      note(report, std::string(table) + ": missing row: " + describe(recomputed[r++]));
    } else {
      if (!(stored[s] == recomputed[r])) {
        note(report, std::string(table) + ": stored " + describe(stored[s]) +
                         " but the events give " + describe(recomputed[r]));
      }
      ++s;
      ++r;
    }
  }
}

}  // namespace

UserDayRollup& RollupAccumulator::user_day(std::uint32_t user_key, UnixSeconds at) {
  const UsageDay day = usage_day_of(at);
  auto [it, inserted] = user_days_.try_emplace(user_day_id(day, user_key));
  if (inserted) {
    it->second.day = day;
    it->second.user_key = user_key;
  }
  return it->second;
}

FeatureDayRollup& RollupAccumulator::feature_day(std::uint32_t user_key, std::uint32_t feature_key,
                                                 UnixSeconds at) {
  const UsageDay day = usage_day_of(at);
  auto [it, inserted] = feature_days_.try_emplace({user_day_id(day, user_key), feature_key});
  if (inserted) {
    it->second.day = day;
    it->second.user_key = user_key;
    it->second.feature_key = feature_key;
  }
  return it->second;
}

void RollupAccumulator::add_usage(std::uint32_t user_key, std::uint32_t feature_key, UnixSeconds at,
                                  std::int64_t count) {
  UserDayRollup& day = user_day(user_key, at);
  day.usage_events += 1;
  day.uses += count;
  FeatureDayRollup& feature = feature_day(user_key, feature_key, at);
  feature.usage_events += 1;
  feature.uses += count;
}

void RollupAccumulator::add_session(std::uint32_t user_key, UnixSeconds at,
                                    std::int64_t duration_seconds) {
  UserDayRollup& day = user_day(user_key, at);
  day.sessions += 1;
  day.session_seconds += duration_seconds;
}

void RollupAccumulator::add_payment(std::uint32_t user_key, UnixSeconds at, bool succeeded,
                                    std::int64_t amount_minor) {
  UserDayRollup& day = user_day(user_key, at);
  if (succeeded) {
    day.payments_succeeded += 1;
    day.amount_succeeded_minor += amount_minor;
  } else {
    day.payments_failed += 1;
    day.amount_failed_minor += amount_minor;
  }
}

void RollupAccumulator::add_paywall_hit(std::uint32_t user_key, std::uint32_t feature_key,
                                        UnixSeconds at) {
  user_day(user_key, at).paywall_hits += 1;
  feature_day(user_key, feature_key, at).paywall_hits += 1;
}

std::vector<UserDayRollup> RollupAccumulator::user_days() const {
  std::vector<UserDayRollup> rows;
  rows.reserve(user_days_.size());
  for (const auto& [id, row] : user_days_) rows.push_back(row);
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return key_of(a) < key_of(b); });
  return rows;
}

std::vector<FeatureDayRollup> RollupAccumulator::feature_days() const {
  std::vector<FeatureDayRollup> rows;
  rows.reserve(feature_days_.size());
  for (const auto& [id, row] : feature_days_) rows.push_back(row);
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return key_of(a) < key_of(b); });
  return rows;
}

void compare_user_days(const std::vector<UserDayRollup>& stored,
                       const std::vector<UserDayRollup>& recomputed, RollupVerification& report) {
  compare_sorted(stored, recomputed, "usage_user_days", report);
}

void compare_feature_days(const std::vector<FeatureDayRollup>& stored,
                          const std::vector<FeatureDayRollup>& recomputed,
                          RollupVerification& report) {
  compare_sorted(stored, recomputed, "usage_feature_days", report);
}

void compare_tier_changes(std::vector<TierChangeRollup> stored,
                          std::vector<TierChangeRollup> recomputed, RollupVerification& report) {
  auto by_key = [](const auto& a, const auto& b) { return key_of(a) < key_of(b); };
  std::sort(stored.begin(), stored.end(), by_key);
  std::sort(recomputed.begin(), recomputed.end(), by_key);
  compare_sorted(stored, recomputed, "usage_tier_changes", report);
}

}  // namespace fulcrum
