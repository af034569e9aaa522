// The usage layer's read path against the raw-event scan it replaced, in the same run and on
// the same store: the rollups of the last 84 days loaded as a UsageHistory (what the engines
// train on) vs scanning the same days' events and aggregating them per user-day in memory
// (what the engines did before), and one user's rollups (scoring one user) vs a scan that
// filters the events of that user. Prints times, rows read and the ratios.
//
//   usage_bench                 the 50k-user, 5M-event store of retention_bench (built once)
//   usage_bench STORE [NOW]     any store, e.g. one made by `fulcrum demo --users 250000`;
//                               NOW (ISO-8601) defaults to just after the latest event
#include <chrono>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "core/time.h"
#include "retention_bench_data.h"
#include "store/store.h"
#include "usage/usage_history.h"

namespace fulcrum::bench {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The old path: every event of the window, with its user id string, into per-user-day sums.
struct RawDay {
  std::int64_t sessions = 0, uses = 0, payments = 0, paywall_hits = 0;
};
std::int64_t raw_scan(Store& store, TimeRange range, const std::string* only_user,
                      std::size_t& cells) {
  std::unordered_map<std::string, std::unordered_map<UsageDay, RawDay>> per_user;
  std::int64_t rows = 0;
  auto cell = [&](const std::string& user, UnixSeconds at) -> RawDay* {
    ++rows;
    if (only_user && user != *only_user) return nullptr;
    return &per_user[user][usage_day_of(at)];
  };
  (void)store.scan_sessions(range, [&](const SessionEvent& e) {
    if (auto* c = cell(e.user_id, e.at)) c->sessions += 1;
  });
  (void)store.scan_feature_usage(range, [&](const FeatureUsageEvent& e) {
    if (auto* c = cell(e.user_id, e.at)) c->uses += e.count;
  });
  (void)store.scan_payments(range, [&](const PaymentEvent& e) {
    if (auto* c = cell(e.user_id, e.at)) c->payments += 1;
  });
  (void)store.scan_paywall_hits(range, [&](const PaywallHitEvent& e) {
    if (auto* c = cell(e.user_id, e.at)) c->paywall_hits += 1;
  });
  cells = 0;
  for (const auto& [user, days] : per_user) cells += days.size();
  return rows;
}

int run(Store& store, UnixSeconds now) {
  const UsageDay end = analysis_end_day(now);
  const UsageDay from = end - 84;
  const TimeRange range{usage_day_start(from), usage_day_start(end)};
  auto users = store.count_users();
  std::printf("store: %lld users; window: 84 days ending %s\n",
              static_cast<long long>(users.is_ok() ? *users : -1),
              format_date(usage_day_start(end)).c_str());

  auto started = std::chrono::steady_clock::now();
  std::size_t cells = 0;
  const std::int64_t events = raw_scan(store, range, nullptr, cells);
  const double raw_seconds = seconds_since(started);

  started = std::chrono::steady_clock::now();
  UsageLoadOptions window;
  window.from_day = from;
  window.to_day = end;
  auto history = UsageHistory::load(store, window);
  const double rollup_seconds = seconds_since(started);
  if (!history.is_ok()) {
    std::fprintf(stderr, "%s\n", history.status().to_string().c_str());
    return 1;
  }
  std::printf("all users   raw-event scan %8.3f s (%lld events -> %zu user-days)\n", raw_seconds,
              static_cast<long long>(events), cells);
  std::printf("            rollup read    %8.3f s (%zu user-day + %zu feature-day rows)\n",
              rollup_seconds, history->day_rows(), history->feature_day_rows());
  std::printf("            ratio raw/rollup %.2fx; events per rollup row %.1f\n",
              raw_seconds / rollup_seconds,
              static_cast<double>(events) /
                  static_cast<double>(history->day_rows() + history->feature_day_rows()));

  // One user: the busiest one of the history.
  int busiest = 0;
  for (int u = 0; u < history->user_count(); ++u) {
    if (history->days(u).size() > history->days(busiest).size()) busiest = u;
  }
  const std::string user_id = history->user_id(busiest);
  started = std::chrono::steady_clock::now();
  std::size_t user_cells = 0;
  raw_scan(store, range, &user_id, user_cells);
  const double raw_user_seconds = seconds_since(started);
  constexpr int kRepeats = 20;
  started = std::chrono::steady_clock::now();
  std::size_t user_rows = 0;
  for (int i = 0; i < kRepeats; ++i) {
    auto one = UsageHistory::load_user(store, user_id, window);
    if (!one.is_ok()) return 1;
    user_rows = one->day_rows() + one->feature_day_rows();
  }
  const double rollup_user_seconds = seconds_since(started) / kRepeats;
  std::printf("one user    raw-event scan %8.3f s (%zu user-days)\n", raw_user_seconds, user_cells);
  std::printf("            rollup read    %8.6f s (%zu rows)\n", rollup_user_seconds, user_rows);
  std::printf("            ratio raw/rollup %.0fx\n", raw_user_seconds / rollup_user_seconds);
  return 0;
}

}  // namespace
}  // namespace fulcrum::bench

int main(int argc, char** argv) {
  using namespace fulcrum;
  std::unique_ptr<Store> store;
  UnixSeconds now = bench::kBenchNow;
  if (argc >= 2) {
    auto opened = open_store(argv[1]);
    if (!opened.is_ok()) {
      std::fprintf(stderr, "%s\n", opened.status().to_string().c_str());
      return 1;
    }
    store = std::move(opened).value();
    if (argc >= 3) {
      auto parsed = parse_iso8601(argv[2]);
      if (!parsed) return 2;
      now = *parsed;
    } else {
      auto latest = store->latest_event_time();
      if (!latest.is_ok()) return 1;
      now = *latest + 1;
    }
  } else {
    store = bench::open_bench_store();
  }
  return bench::run(*store, now);
}
