// Shared synthetic dataset for retention_bench and sunset_bench: 50,000 users and 5M
// events (sessions + feature uses over 84 days, plus monthly payments) in a SQLite store
// cached in the temp directory between runs (ingestion is not what is measured).
#pragma once

#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

#include "store/store.h"

namespace fulcrum::bench {

constexpr UnixSeconds kBenchNow = 1'735'689'600;  // 2025-01-01T00:00:00Z
constexpr int kBenchUsers = 50'000;
constexpr int kBenchDays = 84;
constexpr std::int64_t kBenchEvents = 5'000'000;

inline const std::vector<std::string>& bench_features() {
  static const std::vector<std::string> names = {
      "transfers", "budgets",        "instant_savings", "legacy_statements", "e_statements",
      "cards",     "bill_pay",       "investments",     "insights",          "goals",
      "crypto",    "travel_notices", "loans",           "cashback",          "support_chat"};
  return names;
}

// Opens (building on first use) the benchmark store.
inline std::unique_ptr<Store> open_bench_store() {
  const auto path = std::filesystem::temp_directory_path() / "fulcrum_retention_bench_v1.db";
  const bool exists = std::filesystem::exists(path);
  auto opened = open_store(path.string());
  if (!opened.is_ok()) throw std::runtime_error(opened.status().to_string());
  std::unique_ptr<Store> store = std::move(*opened);
  if (exists) {
    auto users = store->count_users();
    if (users.is_ok() && *users == kBenchUsers) return store;
  }
  std::mt19937_64 rng(2024);
  std::uniform_real_distribution<double> uniform(0, 1);
  const auto& features = bench_features();
  EventBatch batch;
  for (std::size_t f = 0; f < features.size(); ++f) {
    Feature feature;
    feature.name = features[f];
    feature.monthly_maintenance_cost_minor = 100'00 * static_cast<std::int64_t>(f + 1);
    feature.category = f % 2 ? "money" : "planning";
    batch.features.push_back(feature);
  }
  // Per-user daily rate so the total is ~kBenchEvents; a third of users fade out.
  const double mean_per_day = static_cast<double>(kBenchEvents) / kBenchUsers / kBenchDays;
  std::int64_t events = 0;
  for (int u = 0; u < kBenchUsers; ++u) {
    User user;
    user.user_id = "user_" + std::to_string(u);
    user.tier = u % 5 == 0 ? Tier::kPremium : Tier::kFree;
    user.signup_at = kBenchNow - 400 * kSecondsPerDay;
    batch.users.push_back(user);
    double rate = mean_per_day * (0.3 + 1.4 * uniform(rng));
    int leave = uniform(rng) < 0.3 ? static_cast<int>(uniform(rng) * kBenchDays) : kBenchDays;
    for (int d = 0; d < kBenchDays; ++d) {
      UnixSeconds day = kBenchNow - (kBenchDays - d) * kSecondsPerDay;
      double day_rate = d >= leave ? 0.0 : rate;
      int n = static_cast<int>(day_rate) + (uniform(rng) < day_rate - static_cast<int>(day_rate));
      for (int e = 0; e < n; ++e) {
        UnixSeconds at = day + static_cast<UnixSeconds>(uniform(rng) * (kSecondsPerDay - 1));
        if (e == 0) {
          batch.sessions.push_back({user.user_id, at, 300});
        } else {
          batch.feature_usage.push_back(
              {user.user_id,
               features[static_cast<std::size_t>(uniform(rng) * uniform(rng) * features.size())],
               at, 1});
        }
        ++events;
      }
      if (user.tier != Tier::kFree && d % 30 == 0) {
        batch.payments.push_back({user.user_id, day + 3600, uniform(rng) > 0.05, 1499});
      }
    }
    if (batch.size() > 500'000) {
      auto status = store->ingest(batch).status();
      if (!status.is_ok()) throw std::runtime_error(status.to_string());
      batch.clear();
    }
  }
  auto status = store->ingest(batch).status();
  if (!status.is_ok()) throw std::runtime_error(status.to_string());
  return store;
}

}  // namespace fulcrum::bench
