// `fulcrum jobs list|run NAME` and `fulcrum webhooks list|add|remove|deliveries|redeliver`:
// the automation layer (docs/automation.md) from the command line, on the store directly.
// `jobs run` runs the job in this process under its own lease (so it never runs beside a
// server's run of the same period); every change is appended to the audit log.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "api/audit.h"
#include "automation/delivery.h"
#include "automation/jobs.h"
#include "automation/webhooks.h"
#include "cli/command_registry.h"
#include "cli/key_file.h"
#include "core/untrusted_json.h"
#include "optimization/automated_optimization.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

using nlohmann::json;
namespace au = automation;

std::unique_ptr<Store> open_for(const char* command, const std::string& location) {
  auto store = open_store(location);
  if (!store.is_ok()) {
    std::cerr << "fulcrum " << command << ": cannot open store " << location << ": "
              << store.status().to_string() << "\n";
    return nullptr;
  }
  return std::move(*store);
}

int fail(const char* command, const Status& status) {
  std::cerr << "fulcrum " << command << ": " << status.message();
  if (!status.field().empty()) std::cerr << " (field: " << status.field() << ")";
  std::cerr << "\n";
  return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

CommandRunner setup_jobs(CLI::App& app, const GlobalOptions& global) {
  app.description("Scheduled jobs: list them with their last runs, or run one now");
  app.require_subcommand(1);
  struct Args {
    std::string name;
    bool as_json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* list = app.add_subcommand("list", "Jobs, schedules, next and last runs");
  list->add_flag("--json", args->as_json, "Print JSON");
  CLI::App* run = app.add_subcommand("run", "Run one job now (period manual:<time>)");
  run->add_option("name", args->name, "Job name from `jobs list`")->required();
  return [&global, args, list, run]() -> int {
    auto store = open_for("jobs", global.store);
    if (!store) return 1;
    SystemClock clock;
    std::optional<OpenedKeys> keys = open_key_file(global, *store, clock, /*create=*/true, "jobs");
    if (!keys) return 1;
    const api::AuditKey& audit_key = *keys->audit_key;
    AutomatedOptimization optimization(*store, clock);
    Store& s = *store;
    au::AuditSink sink = [&s, &audit_key](AuditEntry entry) {
      return api::append_audit(s, audit_key, std::move(entry)).status();
    };
    au::Scheduler scheduler(*store, clock, au::builtin_jobs({*store, clock, optimization, sink}));
    if (list->parsed()) {
      auto jobs = scheduler.list(1);
      if (!jobs.is_ok()) return fail("jobs", jobs.status());
      if (args->as_json) {
        json items = json::array();
        for (const auto& job : *jobs) items.push_back(au::to_json(job));
        std::cout << items.dump(2) << "\n";
        return 0;
      }
      for (const auto& job : *jobs) {
        std::cout << job.config.name << "\t" << job.config.schedule << " (" << job.config.timezone
                  << ")\t" << (job.config.enabled ? "enabled" : "disabled") << "\tnext "
                  << (job.next_run_at ? format_iso8601(*job.next_run_at) : std::string("-"));
        if (!job.recent_runs.empty()) {
          const JobRun& last = job.recent_runs.front();
          std::cout << "\tlast " << last.period << " " << last.outcome << " "
                    << last.duration_seconds << "s";
        }
        std::cout << "\n";
      }
      return 0;
    }
    auto done = scheduler.run_now(args->name);
    if (!done.is_ok()) return fail("jobs", done.status());
    audit_cli_action(*store, *keys, clock, "jobs.run", args->name, done->outcome, "jobs");
    std::cout << au::to_json(*done).dump(2) << "\n";
    return done->outcome == "ok" ? 0 : 1;
  };
}

CommandRunner setup_webhooks(CLI::App& app, const GlobalOptions& global) {
  app.description("Signed webhook endpoints and their deliveries (docs/automation.md)");
  app.require_subcommand(1);
  struct Args {
    std::string url, endpoint_id, delivery_id, status, format = "json", description;
    std::vector<std::string> events;
    bool allow_insecure_http = false;
    std::size_t limit = 50;
    UnixSeconds grace_seconds = au::kDefaultSecretGraceSeconds;
  };
  auto args = std::make_shared<Args>();
  CLI::App* list = app.add_subcommand("list", "Registered endpoints (never their secrets)");
  CLI::App* add = app.add_subcommand("add", "Register an endpoint; prints its secret once");
  add->add_option("--url", args->url, "https URL (http only to loopback)")->required();
  add->add_option("--event", args->events, "Event type (repeat for several)")->required();
  add->add_option("--format", args->format, "json or slack")->capture_default_str();
  add->add_option("--description", args->description, "What the endpoint is for");
  add->add_flag("--allow-insecure-http", args->allow_insecure_http,
                "Allow a plain-http URL to a non-loopback host");
  CLI::App* remove = app.add_subcommand("remove", "Remove an endpoint");
  remove->add_option("endpoint_id", args->endpoint_id, "Endpoint id")->required();
  CLI::App* rotate = app.add_subcommand(
      "rotate", "New secret and key id; the old secret also signs for --grace-seconds");
  rotate->add_option("endpoint_id", args->endpoint_id, "Endpoint id")->required();
  rotate->add_option("--grace-seconds", args->grace_seconds, "0 to 604800")->capture_default_str();
  CLI::App* deliveries = app.add_subcommand("deliveries", "Recent deliveries, newest first");
  deliveries->add_option("--endpoint", args->endpoint_id, "Only this endpoint");
  deliveries->add_option("--status", args->status, "pending, delivered or dead")
      ->check(CLI::IsMember({"pending", "delivered", "dead"}));
  deliveries->add_option("--limit", args->limit, "How many")->capture_default_str();
  CLI::App* redeliver = app.add_subcommand("redeliver", "Send a dead delivery again");
  redeliver->add_option("delivery_id", args->delivery_id, "Delivery id")->required();
  return [&global, args, list, add, remove, rotate, deliveries, redeliver]() -> int {
    auto store = open_for("webhooks", global.store);
    if (!store) return 1;
    SystemClock clock;
    std::optional<OpenedKeys> keys =
        open_key_file(global, *store, clock, /*create=*/true, "webhooks");
    if (!keys) return 1;
    if (list->parsed()) {
      auto endpoints = au::list_endpoints(*store);
      if (!endpoints.is_ok()) return fail("webhooks", endpoints.status());
      for (const auto& e : *endpoints) {
        std::cout << e.endpoint_id << "\t" << e.url << "\t" << e.format << "\t"
                  << (e.enabled ? "enabled" : "disabled") << "\t";
        for (std::size_t i = 0; i < e.event_types.size(); ++i) {
          std::cout << (i ? "," : "") << e.event_types[i];
        }
        std::cout << "\n";
      }
      return 0;
    }
    if (add->parsed()) {
      json request = {{"url", args->url},
                      {"event_types", args->events},
                      {"format", args->format},
                      {"allow_insecure_http", args->allow_insecure_http}};
      if (!args->description.empty()) request["description"] = args->description;
      auto endpoint = au::create_endpoint(*store, clock, request);
      if (!endpoint.is_ok()) return fail("webhooks", endpoint.status());
      audit_cli_action(*store, *keys, clock, "webhooks.add", endpoint->endpoint_id, "ok", "webhooks");
      std::cout << endpoint->to_json(true).dump(2) << "\n";
      return 0;
    }
    if (remove->parsed()) {
      auto removed = au::remove_endpoint(*store, clock, args->endpoint_id);
      if (!removed.is_ok()) return fail("webhooks", removed.status());
      audit_cli_action(*store, *keys, clock, "webhooks.remove", args->endpoint_id, "ok", "webhooks");
      std::cout << "removed " << args->endpoint_id << "\n";
      return 0;
    }
    if (rotate->parsed()) {
      auto rotated =
          au::rotate_endpoint_secret(*store, clock, args->endpoint_id, args->grace_seconds);
      if (!rotated.is_ok()) return fail("webhooks", rotated.status());
      audit_cli_action(*store, *keys, clock, "webhooks.rotate", args->endpoint_id, "ok",
                       "webhooks");
      json out = rotated->to_json(false);
      out["secret"] = rotated->secret;
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    if (deliveries->parsed()) {
      WebhookDeliveryFilter filter{args->endpoint_id, args->status, args->limit};
      auto found = store->list_webhook_deliveries(filter);
      if (!found.is_ok()) return fail("webhooks", found.status());
      for (const auto& d : *found) {
        std::cout << d.delivery_id << "\t" << d.endpoint_id << "\t" << d.event_type << "\t"
                  << d.status << "\tattempts " << d.attempts << "\t" << d.last_error << "\n";
      }
      return 0;
    }
    au::WebhookDispatcher dispatcher(*store, clock);
    auto again = dispatcher.redeliver(args->delivery_id);
    if (!again.is_ok()) return fail("webhooks", again.status());
    audit_cli_action(*store, *keys, clock, "webhooks.redeliver", args->delivery_id, "ok", "webhooks");
    std::cout << "queued " << args->delivery_id << " for redelivery\n";
    (void)redeliver;
    return 0;
  };
}

const CommandRegistration kJobs("jobs", setup_jobs);
const CommandRegistration kWebhooks("webhooks", setup_webhooks);

}  // namespace
}  // namespace fulcrum::cli
