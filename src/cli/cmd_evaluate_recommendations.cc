// `fulcrum evaluate recommendations` and `fulcrum evaluate upgrade-timing`: time-split
// offline evaluations of the recommender (precision/recall/NDCG@k vs most-popular) and of
// the upgrade propensity model (AUC and Brier vs the paywall-hits rule and the base rate).
// "now" is --now when given, else the latest stored event (demo data lives in the past).
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli/evaluate_registry.h"
#include "core/time.h"
#include "lifecycle/upgrade_timing.h"
#include "recommend/evaluation.h"
#include "recommend/recommendations.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

struct EvaluateOptions {
  std::string now;
  bool json = false;
  int k = 5;
  int window_days = 28;
};

// Opens the store and resolves "now"; prints the error and returns false on failure.
bool open_with_now(const GlobalOptions& global, const EvaluateOptions& options,
                   std::unique_ptr<Store>& store, UnixSeconds& now) {
  auto opened = open_store(global.store);
  if (!opened.is_ok()) {
    std::cerr << "cannot open store: " << opened.status().to_string() << "\n";
    return false;
  }
  store = std::move(opened).value();
  if (!options.now.empty()) {
    auto parsed = parse_iso8601(options.now);
    if (!parsed) {
      std::cerr << "--now: not an ISO-8601 time: " << options.now << "\n";
      return false;
    }
    now = *parsed;
    return true;
  }
  auto latest = store->latest_event_time();
  if (!latest.is_ok()) {
    std::cerr << latest.status().to_string() << "\n";
    return false;
  }
  if (*latest == 0) {
    std::cerr << "the store holds no events (load demo data first)\n";
    return false;
  }
  now = *latest + 1;  // the last event belongs to the history
  return true;
}

CommandRunner setup_recommendations(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<EvaluateOptions>();
  app.add_option("--now", options->now, "evaluation time (ISO-8601; default: latest event)");
  app.add_option("--k", options->k, "cut-off rank (default 5)")->check(CLI::PositiveNumber);
  app.add_option("--window-days", options->window_days, "holdout window in days (default 28)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--json", options->json, "print JSON");
  return [&global, options]() {
    std::unique_ptr<Store> store;
    UnixSeconds now = 0;
    if (!open_with_now(global, *options, store, now)) return 1;
    auto history = UsageHistory::open(*store, UsageLoadOptions{.to_day = analysis_end_day(now)});
    if (!history.is_ok()) {
      std::cerr << history.status().to_string() << "\n";
      return 1;
    }
    RecommendOptions recommend;
    recommend.window_seconds = options->window_days * kSecondsPerDay;
    auto evaluation = evaluate_recommendations(*history, now, recommend, options->k);
    if (!evaluation.is_ok()) {
      std::cerr << evaluation.status().to_string() << "\n";
      return 1;
    }
    if (options->json) {
      std::cout << evaluation->to_json().dump(2) << "\n";
      return 0;
    }
    const auto& e = *evaluation;
    std::cout << fmt::format(
        "Recommendations, time split: train before {}, adoptions until {} ({} users)\n",
        format_iso8601(e.cutoff), format_iso8601(e.until), e.users_evaluated);
    std::cout << fmt::format("{:<18}{:>14}{:>12}{:>10}\n", "ranker",
                             fmt::format("precision@{}", e.k), fmt::format("recall@{}", e.k),
                             fmt::format("NDCG@{}", e.k));
    std::cout << fmt::format("{:<18}{:>14.4f}{:>12.4f}{:>10.4f}\n",
                             fmt::format("EASE, lambda {:g}", e.lambda.chosen), e.model.precision,
                             e.model.recall, e.model.ndcg);
    std::cout << fmt::format("{:<18}{:>14.4f}{:>12.4f}{:>10.4f}\n", "most popular",
                             e.most_popular.precision, e.most_popular.recall, e.most_popular.ndcg);
    std::cout << fmt::format(
        "{:<18}{:>14.4f}{:>12.4f}{:>10.4f}\n", fmt::format("EASE, lambda {:g}", kFixedEaseLambda),
        e.fixed_lambda_model.precision, e.fixed_lambda_model.recall, e.fixed_lambda_model.ndcg);
    const auto& lambda = e.lambda;
    if (!lambda.validated) {
      std::cout << fmt::format(
          "EASE lambda {:g} (not validated: no user adopted a new feature between {} and {})\n",
          lambda.chosen, format_iso8601(lambda.train_until), format_iso8601(lambda.validate_until));
      return 0;
    }
    std::cout << fmt::format(
        "EASE lambda {:g}, chosen by validation: trained before {}, NDCG@{} on the adoptions "
        "until {} ({} users)\n",
        lambda.chosen, format_iso8601(lambda.train_until), lambda.k,
        format_iso8601(lambda.validate_until), lambda.users_validated);
    std::cout << fmt::format("{:>10}{:>10}\n", "lambda", fmt::format("NDCG@{}", lambda.k));
    for (const auto& point : lambda.grid) {
      std::cout << fmt::format("{:>10g}{:>10.4f}{}\n", point.lambda, point.ndcg,
                               point.lambda == lambda.chosen ? "  <- chosen" : "");
    }
    return 0;
  };
}

CommandRunner setup_upgrade_timing(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<EvaluateOptions>();
  app.add_option("--now", options->now, "evaluation time (ISO-8601; default: latest event)");
  app.add_flag("--json", options->json, "print JSON");
  return [&global, options]() {
    std::unique_ptr<Store> store;
    UnixSeconds now = 0;
    if (!open_with_now(global, *options, store, now)) return 1;
    auto evaluation = evaluate_upgrade_timing(*store, now);
    if (!evaluation.is_ok()) {
      std::cerr << evaluation.status().to_string() << "\n";
      return 1;
    }
    if (options->json) {
      std::cout << evaluation->to_json().dump(2) << "\n";
      return 0;
    }
    const auto& e = *evaluation;
    std::cout << fmt::format(
        "Upgrade within 7 days, time split: train before {}, holdout {} .. {}\n"
        "train rows {} (upgrade rate {:.4f}), holdout rows {} (upgrade rate {:.4f})\n",
        format_iso8601(e.train_until), format_iso8601(e.holdout_from),
        format_iso8601(e.holdout_until), e.train_rows, e.train_upgrade_rate, e.holdout_rows,
        e.holdout_upgrade_rate);
    std::cout << fmt::format("{:<22}{:>8}{:>10}\n", "predictor", "AUC", "Brier");
    std::cout << fmt::format("{:<22}{:>8.4f}{:>10.5f}\n", "propensity model", e.model_auc,
                             e.model_brier);
    std::cout << fmt::format("{:<22}{:>8.4f}{:>10.5f}\n", "paywall hits only", e.paywall_auc,
                             e.paywall_brier);
    std::cout << fmt::format("{:<22}{:>8.4f}{:>10.5f}\n", "base rate", e.base_rate_auc,
                             e.base_rate_brier);
    return 0;
  };
}

const EvaluateRegistration kRecommendations(
    "recommendations", "Time-split precision/recall/NDCG@k of the recommender vs most-popular",
    setup_recommendations);
const EvaluateRegistration kUpgradeTiming(
    "upgrade-timing", "Time-split AUC and Brier of the upgrade propensity model vs baselines",
    setup_upgrade_timing);

}  // namespace
}  // namespace fulcrum::cli
