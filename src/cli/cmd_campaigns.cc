// `fulcrum campaigns trigger|list|results|activate|complete` (retention campaigns) and
// `fulcrum evaluate churn` (time-split AUC of the churn model). "now" is --now when
// given, else just after the latest stored event (demo data lives in the past).
#include <iostream>
#include <memory>

#include "cli/command_registry.h"
#include "cli/evaluate_registry.h"
#include "core/time.h"
#include "lifecycle/churn_model.h"
#include "lifecycle/retention_campaigns.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

// Opens the store and resolves "now"; prints the error and returns nullptr on failure.
std::unique_ptr<Store> open_with_now(const GlobalOptions& global, const std::string& now_text,
                                     UnixSeconds& now) {
  auto opened = open_store(global.store);
  if (!opened.is_ok()) {
    std::cerr << "cannot open store: " << opened.status().to_string() << "\n";
    return nullptr;
  }
  std::unique_ptr<Store> store = std::move(opened).value();
  if (!now_text.empty()) {
    auto parsed = parse_iso8601(now_text);
    if (!parsed) {
      std::cerr << "--now: not an ISO-8601 time: " << now_text << "\n";
      return nullptr;
    }
    now = *parsed;
    return store;
  }
  auto latest = store->latest_event_time();
  if (!latest.is_ok()) {
    std::cerr << latest.status().to_string() << "\n";
    return nullptr;
  }
  now = *latest + 1;  // the last event belongs to the history
  return store;
}

int print_error(const Status& status) {
  std::cerr << status.to_string() << "\n";
  return 1;
}

struct CampaignOptions {
  std::string now;
  std::string status;
  std::string campaign_id;
  bool summary_only = false;
  RetentionCampaignConfig config;
};

CommandRunner setup_campaigns(CLI::App& app, const GlobalOptions& global) {
  app.description("Retention campaigns: run the triggers, list campaigns, measure their lift");
  app.require_subcommand(1);
  auto options = std::make_shared<CampaignOptions>();
  auto add_now = [&](CLI::App* sub) {
    sub->add_option("--now", options->now, "time to act at (ISO-8601; default: latest event)");
  };
  CLI::App* trigger = app.add_subcommand("trigger", "Run the five triggers and store campaigns");
  add_now(trigger);
  trigger->add_option("--cooldown-days", options->config.cooldown_days,
                      "do not re-target a user for this many days (default 30)");
  trigger->add_option("--holdout", options->config.holdout_fraction,
                      "held-out fraction of targets (default 0.1)");
  trigger->add_option("--status", options->config.initial_status,
                      "initial status: active (default) or draft");
  trigger->add_option("--churn-threshold", options->config.triggers.churn_risk_threshold,
                      "churn probability that triggers churn_risk (default 0.5)");
  trigger->add_flag("--summary", options->summary_only, "print counts, not user lists");
  CLI::App* list = app.add_subcommand("list", "List stored campaigns (JSON)");
  list->add_option("--status", options->status, "only campaigns in this status");
  list->add_flag("--summary", options->summary_only, "print counts, not user lists");
  CLI::App* results = app.add_subcommand("results", "Measured retention lift vs holdout (JSON)");
  results->add_option("campaign_id", options->campaign_id)->required();
  add_now(results);
  CLI::App* activate = app.add_subcommand("activate", "draft -> active");
  activate->add_option("campaign_id", options->campaign_id)->required();
  add_now(activate);
  CLI::App* complete = app.add_subcommand("complete", "active -> completed");
  complete->add_option("campaign_id", options->campaign_id)->required();
  add_now(complete);

  auto print_campaigns = [options](const std::vector<RetentionCampaign>& campaigns) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& campaign : campaigns) {
      nlohmann::json json = campaign.to_json();
      if (options->summary_only) {
        json.erase("target_users");
        json.erase("holdout_users");
        json["holdout_user_count"] = campaign.holdout_users.size();
      }
      out.push_back(std::move(json));
    }
    std::cout << out.dump(2) << "\n";
  };
  return [&global, options, trigger, list, results, activate, complete, print_campaigns]() {
    UnixSeconds now = 0;
    auto store = open_with_now(global, options->now, now);
    if (!store) return 1;
    ManualClock clock(now);
    if (trigger->parsed()) {
      auto campaigns = trigger_retention_campaigns(*store, clock, options->config);
      if (!campaigns.is_ok()) return print_error(campaigns.status());
      print_campaigns(*campaigns);
      return 0;
    }
    if (list->parsed()) {
      auto campaigns = list_campaigns(*store, options->status);
      if (!campaigns.is_ok()) return print_error(campaigns.status());
      print_campaigns(*campaigns);
      return 0;
    }
    if (results->parsed()) {
      auto measured = campaign_results(*store, clock, options->campaign_id);
      if (!measured.is_ok()) return print_error(measured.status());
      std::cout << measured->to_json().dump(2) << "\n";
      return 0;
    }
    auto changed = activate->parsed() ? activate_campaign(*store, clock, options->campaign_id)
                                      : complete_campaign(*store, clock, options->campaign_id);
    if (!changed.is_ok()) return print_error(changed.status());
    std::cout << options->campaign_id << " is " << changed->campaign_status << "\n";
    return 0;
  };
}

const CommandRegistration kCampaigns("campaigns", setup_campaigns);

struct ChurnOptions {
  std::string now;
  bool json = false;
  ChurnModelConfig config;
};

CommandRunner setup_evaluate_churn(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<ChurnOptions>();
  app.add_option("--now", options->now, "evaluation time (ISO-8601; default: latest event)");
  app.add_option("--label-days", options->config.label_days,
                 "churned = no activity in this many days (default 28)");
  app.add_option("--l2", options->config.l2, "ridge penalty (default 1.0)");
  app.add_flag("--json", options->json, "print JSON");
  return [&global, options]() {
    UnixSeconds now = 0;
    auto store = open_with_now(global, options->now, now);
    if (!store) return 1;
    ManualClock clock(now);
    auto evaluation = evaluate_churn_model(*store, clock, options->config);
    if (!evaluation.is_ok()) return print_error(evaluation.status());
    if (options->json) {
      std::cout << evaluation->to_json().dump(2) << "\n";
      return 0;
    }
    std::cout << "churn model (L2 logistic regression, IRLS), time split\n"
              << "  train cutoff " << format_iso8601(evaluation->train_cutoff) << ": "
              << evaluation->train_rows << " users, churn rate " << evaluation->train_churn_rate
              << "\n"
              << "  test cutoff  " << format_iso8601(evaluation->test_cutoff) << ": "
              << evaluation->test_rows << " users, churn rate " << evaluation->test_churn_rate
              << "\n"
              << "  holdout AUC  " << evaluation->test_auc << "\n";
    return 0;
  };
}

const EvaluateRegistration kEvaluateChurn("churn",
                                          "Churn model AUC on a time-split holdout (label: no "
                                          "activity in the next 28 days)",
                                          setup_evaluate_churn);

}  // namespace
}  // namespace fulcrum::cli
