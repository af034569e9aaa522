// `fulcrum power --baseline 0.1 --mde 0.02 [--relative] [--sd S] [--alpha 0.05]
// [--power 0.8] [--daily-users N] [--groups 2]`: users per group (and days)
// needed for a two-sided test to detect the effect, as statsmodels
// NormalIndPower computes it. With
// --sd the metric is a mean with that per-user standard deviation, otherwise a
// conversion rate. Prints JSON; bad input exits 2 naming the option.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command_registry.h"
#include "stats/power.h"

namespace fulcrum::cli {
namespace {

struct PowerOptions {
  double baseline = 0;
  double mde = 0;
  bool relative = false;
  double sd = 0;
  double alpha = 0.05;
  double power = 0.8;
  double daily_users = 0;
  int groups = 2;
};

CommandRunner setup_power(CLI::App& app, const GlobalOptions&) {
  app.description("Sample size per group and days needed to detect a minimum effect");
  auto options = std::make_shared<PowerOptions>();
  app.add_option("--baseline", options->baseline,
                 "Control conversion rate in (0,1), or control mean with --sd")
      ->required();
  app.add_option("--mde", options->mde,
                 "Minimum detectable effect: absolute, or a fraction with --relative")
      ->required();
  app.add_flag("--relative", options->relative, "Read --mde as a relative lift (0.05 = +5%)");
  CLI::Option* sd =
      app.add_option("--sd", options->sd, "Per-user standard deviation (mean metrics)");
  app.add_option("--alpha", options->alpha, "Two-sided significance level (default 0.05)");
  app.add_option("--power", options->power, "Target power (default 0.8)");
  CLI::Option* daily = app.add_option("--daily-users", options->daily_users,
                                      "Users entering the test per day, all groups together");
  app.add_option("--groups", options->groups, "Number of groups incl. control (default 2)");
  return [options, sd, daily]() -> int {
    stats::PowerQuery query;
    query.kind = sd->count() > 0 ? stats::MetricKind::kMean : stats::MetricKind::kProportion;
    query.baseline = options->baseline;
    query.sd = options->sd;
    query.mde = options->mde;
    query.relative = options->relative;
    query.alpha = options->alpha;
    query.power = options->power;
    query.groups = options->groups;
    if (daily->count() > 0) query.daily_users = options->daily_users;
    auto plan = stats::plan_sample_size(query);
    if (!plan) {
      std::string field = plan.status().field();
      for (char& c : field) c = c == '_' ? '-' : c;
      std::cerr << "fulcrum power: --" << field << ": " << plan.status().message() << "\n";
      return 2;
    }
    nlohmann::json out = {
        {"metric", query.kind == stats::MetricKind::kMean ? "mean" : "proportion"},
        {"baseline", query.baseline},
        {"mde_absolute", plan->absolute_mde},
        {"mde_relative",
         query.baseline != 0 ? nlohmann::json(plan->absolute_mde / query.baseline) : nullptr},
        {"effect_size", plan->effect_size},
        {"alpha", query.alpha},
        {"power", query.power},
        {"groups", query.groups},
        {"exact_sample_size_per_group", plan->exact_sample_size},
        {"sample_size_per_group", plan->sample_size_per_group},
        {"total_sample_size", plan->total_sample_size},
        {"days_needed", plan->days_needed ? nlohmann::json(*plan->days_needed) : nullptr}};
    std::cout << out.dump(2) << "\n";
    return 0;
  };
}

const CommandRegistration kPower("power", setup_power);

}  // namespace
}  // namespace fulcrum::cli
