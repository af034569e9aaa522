// `fulcrum demo`: generates the synthetic bank dataset (docs/demo-data.md) into the store.
#include <chrono>
#include <iostream>
#include <memory>

#include "cli/command_registry.h"
#include "core/time.h"
#include "demo/demo_data.h"
#include "experiments/demo_seed.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

struct DemoCommandOptions {
  std::int64_t users = 50'000;
  int days = 90;
  std::uint64_t seed = 42;
  std::string end_date;  // YYYY-MM-DD, default today (UTC)
  bool force = false;
};

int run_demo(const DemoCommandOptions& options, const GlobalOptions& global) {
  demo::DemoOptions demo_options;
  demo_options.users = options.users;
  demo_options.days = options.days;
  demo_options.seed = options.seed;
  if (options.end_date.empty()) {
    demo_options.end = floor_to_day(SystemClock().now());
  } else {
    auto parsed = parse_iso8601(options.end_date);
    if (!parsed || options.end_date.size() != 10) {
      std::cerr << "fulcrum demo: --end-date must be YYYY-MM-DD, got '" << options.end_date
                << "'\n";
      return 2;
    }
    demo_options.end = *parsed;
  }
  auto store = open_store(global.store);
  if (!store.is_ok()) {
    std::cerr << "fulcrum demo: cannot open store " << global.store << ": "
              << store.status().message() << "\n";
    return 1;
  }
  auto existing = (*store)->count_users();
  if (!existing.is_ok()) {
    std::cerr << "fulcrum demo: " << existing.status().message() << "\n";
    return 1;
  }
  if (*existing > 0 && !options.force) {
    std::cerr << "fulcrum demo: store " << global.store << " already holds " << *existing
              << " users; use a new --store (or --force to add the demo data anyway)\n";
    return 1;
  }
  const auto started = std::chrono::steady_clock::now();
  Store& target = **store;
  auto summary = demo::generate_demo_data(
      demo_options, [&](const EventBatch& batch) { return target.ingest(batch).status(); });
  if (!summary.is_ok()) {
    std::cerr << "fulcrum demo: " << summary.status().to_string() << "\n";
    return 1;
  }
  // The demo exposures belong to two running A/B tests: register them so the dashboard and
  // the results route show them.
  ManualClock demo_clock(demo_options.end);
  auto seeded = experiments::seed_demo_experiments(target, demo_clock);
  if (!seeded.is_ok()) {
    std::cerr << "fulcrum demo: " << seeded.status().to_string() << "\n";
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const demo::DemoSummary& s = *summary;
  std::cout << "demo data: " << s.users << " user records, " << s.features << " features, "
            << s.events() << " events from " << format_date(s.start) << " to "
            << format_date(s.end - 1) << " (seed " << options.seed << ") in " << seconds << " s ("
            << static_cast<std::int64_t>(static_cast<double>(s.events()) / seconds)
            << " events/s)\n"
            << "  feature_usage " << s.feature_usage << ", sessions " << s.sessions
            << ", subscription_changes " << s.subscription_changes << ", payments " << s.payments
            << ", paywall_hits " << s.paywall_hits << ", exposures " << s.exposures
            << ", metric_events " << s.metric_events << "\n"
            << "  planted: " << s.truth.churners.size() << " churners, " << s.truth.upgraders.size()
            << " upgraders, " << s.truth.abandonments.size() << " feature abandonments; checksum "
            << std::hex << s.checksum << std::dec << "\n";
  return 0;
}

CommandRunner setup_demo(CLI::App& app, const GlobalOptions& global) {
  app.description(
      "Generate a reproducible synthetic bank dataset with planted effects into the store "
      "(docs/demo-data.md)");
  auto options = std::make_shared<DemoCommandOptions>();
  app.add_option("--users", options->users, "number of users (default 50000)")
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--days", options->days, "days of history (default 90)")
      ->check(CLI::Range(28, 3650));
  app.add_option("--seed", options->seed, "random seed (default 42)");
  app.add_option("--end-date", options->end_date,
                 "the data ends at this date's 00:00 UTC (default: today)");
  app.add_flag("--force", options->force, "add the data even if the store is not empty");
  return [options, &global]() { return run_demo(*options, global); };
}

const CommandRegistration kDemo("demo", setup_demo);

}  // namespace
}  // namespace fulcrum::cli
