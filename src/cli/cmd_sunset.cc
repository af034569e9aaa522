// `fulcrum sunset`: the feature sunset analysis of every catalog feature, printed as the
// JSON array GET /feature-sunset returns. "now" is --now when given, else just after the
// latest stored event (demo data lives in the past).
#include <iostream>
#include <memory>

#include "cli/command_registry.h"
#include "core/time.h"
#include "store/store.h"
#include "sunset/sunset.h"

namespace fulcrum::cli {
namespace {

struct SunsetOptions {
  std::string now;
  SunsetConfig config;
};

CommandRunner setup_sunset(CLI::App& app, const GlobalOptions& global) {
  app.description("Feature sunset analysis of every catalog feature (JSON)");
  auto options = std::make_shared<SunsetOptions>();
  app.add_option("--now", options->now, "analysis time (ISO-8601; default: latest event)");
  app.add_option("--trend-weeks", options->config.trend_weeks, "weeks in the trend (default 12)");
  app.add_option("--notice-days", options->config.notice_days,
                 "notice period before a sunset date (default 90)");
  app.add_option("--low-share", options->config.low_share,
                 "share of weekly actives below which a feature is niche (default 0.10)");
  return [&global, options]() {
    auto store = open_store(global.store);
    if (!store.is_ok()) {
      std::cerr << "cannot open store: " << store.status().to_string() << "\n";
      return 1;
    }
    UnixSeconds now = 0;
    if (!options->now.empty()) {
      auto parsed = parse_iso8601(options->now);
      if (!parsed) {
        std::cerr << "--now: not an ISO-8601 time: " << options->now << "\n";
        return 1;
      }
      now = *parsed;
    } else {
      auto latest = (*store)->latest_event_time();
      if (!latest.is_ok()) {
        std::cerr << latest.status().to_string() << "\n";
        return 1;
      }
      now = *latest + 1;
    }
    ManualClock clock(now);
    auto analyses = analyze_feature_sunset(**store, clock, options->config);
    if (!analyses.is_ok()) {
      std::cerr << analyses.status().to_string() << "\n";
      return 1;
    }
    std::cout << sunset_analyses_to_json(*analyses).dump(2) << "\n";
    return 0;
  };
}

const CommandRegistration kSunset("sunset", setup_sunset);

}  // namespace
}  // namespace fulcrum::cli
