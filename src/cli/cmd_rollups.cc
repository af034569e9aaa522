// `fulcrum rollups verify`: recomputes the usage rollups (per user-day aggregates the store
// keeps beside the events) from the stored events and compares them row by row; exit 1 and
// the first differences when they disagree. `fulcrum rollups rebuild` replaces them with the
// recomputed rows in one transaction.
#include <chrono>
#include <iostream>

#include "cli/command_registry.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

CommandRunner setup_rollups(CLI::App& app, const GlobalOptions& global) {
  app.description("Check or rebuild the usage rollups");
  app.require_subcommand(1);
  CLI::App* verify = app.add_subcommand("verify", "Recompute the rollups from events and compare");
  CLI::App* rebuild = app.add_subcommand("rebuild", "Recompute the rollups from events");
  return [&global, verify, rebuild]() -> int {
    const char* name = verify->parsed() ? "verify" : "rebuild";
    auto store = open_store(global.store);
    if (!store.is_ok()) {
      std::cerr << "fulcrum rollups " << name << ": cannot open store " << global.store << ": "
                << store.status().to_string() << "\n";
      return 1;
    }
    const auto started = std::chrono::steady_clock::now();
    auto seconds = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    };
    if (rebuild->parsed()) {
      Status rebuilt = (*store)->rebuild_rollups();
      if (!rebuilt.is_ok()) {
        std::cerr << "fulcrum rollups rebuild: " << rebuilt.to_string() << "\n";
        return 1;
      }
      std::cout << "rollups rebuilt from the events in " << seconds() << " s\n";
      return 0;
    }
    auto report = (*store)->verify_rollups();
    if (!report.is_ok()) {
      std::cerr << "fulcrum rollups verify: " << report.status().to_string() << "\n";
      return 1;
    }
    const std::string counts = std::to_string(report->user_days) + " user-days, " +
                               std::to_string(report->feature_days) + " feature-days, " +
                               std::to_string(report->tier_changes) + " tier changes";
    if (!report->consistent()) {
      std::cout << "rollups INCONSISTENT with the events: " << report->mismatches
                << " row(s) differ (events give " << counts << ")\n";
      for (const auto& example : report->examples) std::cout << "  " << example << "\n";
      return 1;
    }
    std::cout << "rollups consistent with the events: " << counts << " (" << seconds() << " s)\n";
    return 0;
  };
}

const CommandRegistration kRollups("rollups", setup_rollups);

}  // namespace
}  // namespace fulcrum::cli
