// `fulcrum serve`: runs the HTTP API and dashboard until SIGTERM/SIGINT, then drains
// in-flight requests. Options come from flags or a config file (--config): INI/TOML as CLI11
// reads them, or a JSON object ({"port": 8080, "store": "fulcrum.db"}).
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "api/auth.h"
#include "api/logs.h"
#include "api/server.h"
#include "cli/command_registry.h"
#include "cli/key_file.h"
#include "core/ids.h"
#include "core/untrusted_json.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

// Reads JSON objects (flat, or nested objects as sections) and hands anything else to
// CLI11's INI/TOML reader.
class JsonOrIniConfig : public CLI::ConfigINI {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::stringstream buffer;
    buffer << input.rdbuf();
    const std::string text = buffer.str();
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || text[first] != '{') {
      std::stringstream again(text);
      return CLI::ConfigINI::from_config(again);
    }
    auto document = parse_untrusted_json_object(text, "config file");
    if (!document.is_ok()) throw CLI::ConversionError(document.status().message());
    std::vector<CLI::ConfigItem> items;
    add_items(*document, {}, items);
    return items;
  }

 private:
  static std::string scalar(const nlohmann::json& value) {
    return value.is_string() ? value.get<std::string>() : value.dump();
  }
  static void add_items(const nlohmann::json& object, const std::vector<std::string>& parents,
                        std::vector<CLI::ConfigItem>& items) {
    for (const auto& [key, value] : object.items()) {
      if (value.is_object()) {
        auto nested = parents;
        nested.push_back(key);
        add_items(value, nested, items);
        continue;
      }
      CLI::ConfigItem item;
      item.parents = parents;
      item.name = key;
      if (value.is_array()) {
        for (const auto& element : value) item.inputs.push_back(scalar(element));
      } else {
        item.inputs.push_back(scalar(value));
      }
      items.push_back(std::move(item));
    }
  }
};

CommandRunner setup_serve(CLI::App& app, const GlobalOptions& global) {
  app.description("Serve the HTTP API, /metrics, /healthz and the dashboard");
  app.config_formatter(std::make_shared<JsonOrIniConfig>());
  app.set_config("--config", "", "Read options from an INI/TOML or JSON file");
  struct Args {
    api::ServerOptions options;
    std::string store;
    std::string checkpoint_file;
    std::int64_t checkpoint_interval_s = 60;
    std::int64_t read_timeout_ms = 15'000, idle_timeout_ms = 60'000, grace_ms = 30'000;
    std::int64_t experiment_cache_ms = 100;
    bool no_automation = false, no_scheduler = false;
    std::int64_t scheduler_interval_ms = 5'000, dispatch_interval_ms = 1'000;
    std::int64_t webhook_timeout_ms = 10'000;
    std::int64_t change_feed_retention_days = 7;
  };
  auto args = std::make_shared<Args>();
  args->options.address = "127.0.0.1";
  args->options.web_dir = "web";
  args->options.handle_signals = true;
  app.add_option("--address", args->options.address, "Address to listen on")
      ->capture_default_str();
  app.add_option("--port", args->options.port, "TCP port (0 picks a free one)")
      ->capture_default_str();
  app.add_option("--store", args->store, "SQLite file or postgres:// URL (overrides --store "
                                         "before the subcommand)");
  app.add_option("--web-dir", args->options.web_dir, "Dashboard static files ('' disables)")
      ->capture_default_str();
  app.add_option("--body-limit", args->options.body_limit_bytes,
                 "Request body limit in bytes for every route but ingestion")
      ->capture_default_str();
  app.add_option("--bulk-body-limit", args->options.bulk_body_limit_bytes,
                 "Request body limit in bytes for the ingestion routes (/events...)")
      ->capture_default_str();
  app.add_option("--header-limit", args->options.header_limit_bytes,
                 "Request line plus headers, in bytes (larger: 431)")
      ->capture_default_str();
  app.add_option("--max-connections", args->options.max_connections,
                 "Open connections in all; more are answered 503 and closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-connections-per-address", args->options.max_connections_per_address,
                 "Open connections per client IP address; more are answered 503 and closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--auth-failure-burst", args->options.auth_failure_burst,
                 "Failed authentications per client address before 429 (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--auth-failures-per-minute", args->options.auth_failures_per_minute,
                 "Rate at which an address's failed-authentication budget refills")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--metrics-auth", args->options.metrics_auth,
               "GET /metrics requires an admin or analyst key");
  app.add_option("--read-timeout-ms", args->read_timeout_ms,
                 "A request must arrive within this time")
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", args->idle_timeout_ms,
                 "Keep-alive connections idle longer are closed")
      ->capture_default_str();
  app.add_option("--shutdown-grace-ms", args->grace_ms,
                 "On SIGTERM, in-flight requests get this long to finish")
      ->capture_default_str();
  app.add_option("--io-threads", args->options.io_threads, "Threads running network IO")
      ->capture_default_str();
  app.add_option("--workers", args->options.worker_threads,
                 "Threads running handlers (store and engine work)")
      ->capture_default_str();
  app.add_option("--priority-workers", args->options.priority_worker_threads,
                 "Threads reserved for ingestion and assignment, so slow reads cannot stall "
                 "them")
      ->capture_default_str();
  app.add_option("--experiment-cache-ms", args->experiment_cache_ms,
                 "A/B tests changed through another replica are seen within this time (0: "
                 "read the store on every request)")
      ->capture_default_str();
  app.add_option("--change-feed-retention-days", args->change_feed_retention_days,
                 "Days fanned-out change-feed rows (the webhook outbox) are kept")
      ->check(CLI::Range(1, 3650))
      ->capture_default_str();
  app.add_flag("--no-automation", args->no_automation,
               "Run neither the job scheduler nor the webhook dispatcher (docs/automation.md)");
  app.add_flag("--no-scheduler", args->no_scheduler,
               "Deliver webhooks but run no scheduled jobs here (another replica runs them)");
  app.add_option("--scheduler-interval-ms", args->scheduler_interval_ms,
                 "How often the scheduler looks for due jobs")
      ->capture_default_str()
      ->check(CLI::Range(100, 3'600'000));
  app.add_option("--webhook-dispatch-interval-ms", args->dispatch_interval_ms,
                 "How often the webhook dispatcher looks for due deliveries")
      ->capture_default_str()
      ->check(CLI::Range(10, 600'000));
  app.add_option("--webhook-retry-base-seconds", args->options.webhook_retry_base_seconds,
                 "First retry delay; doubles per attempt, with jitter")
      ->capture_default_str()
      ->check(CLI::Range(1, 86'400));
  app.add_option("--webhook-max-attempts", args->options.webhook_max_attempts,
                 "Attempts before a delivery is dead-lettered")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--webhook-timeout-ms", args->webhook_timeout_ms,
                 "Time a receiver has to answer one delivery")
      ->capture_default_str()
      ->check(CLI::Range(100, 120'000));
  app.add_option("--audit-checkpoints", args->checkpoint_file,
                 "Append signed checkpoints of the audit head here (default: next to the key "
                 "file, <name>.audit-checkpoints; 'off' disables)");
  app.add_option("--audit-checkpoint-interval-s", args->checkpoint_interval_s,
                 "Seconds between checkpoints (written only when the head moved)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--access-log", args->options.access_log,
                 "Access log, JSON lines: a file, '-' for stdout, '' (default) off");
  app.add_option("--error-log", args->options.error_log,
                 "Error log, JSON lines: a file; default stderr");
  app.add_option("--tls-cert", args->options.tls_cert_file,
                 "Serve HTTPS: PEM certificate chain (with --tls-key; SIGHUP reloads both)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", args->options.tls_key_file, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);

  return [&global, args]() -> int {
    const std::string location = args->store.empty() ? global.store : args->store;
    auto store = open_store(location);
    if (!store.is_ok()) {
      std::cerr << "fulcrum serve: cannot open store " << location << ": "
                << store.status().to_string() << "\n";
      return 1;
    }
    SystemClock clock;
    GlobalOptions located = global;
    located.store = location;
    auto keys = open_key_file(located, **store, clock, /*create=*/true, "serve");
    if (!keys) return 1;
    api::ServerOptions options = args->options;
    options.keyring = keys->keyring;
    options.audit_checkpoint_file = args->checkpoint_file == "off" ? std::string()
                                    : args->checkpoint_file.empty() ? keys->checkpoint_file
                                                                    : args->checkpoint_file;
    options.audit_checkpoint_interval = std::chrono::seconds(args->checkpoint_interval_s);
    options.read_timeout = std::chrono::milliseconds(args->read_timeout_ms);
    options.idle_timeout = std::chrono::milliseconds(args->idle_timeout_ms);
    options.shutdown_grace = std::chrono::milliseconds(args->grace_ms);
    options.experiment_cache = std::chrono::milliseconds(args->experiment_cache_ms);
    options.automation = !args->no_automation;
    options.change_feed_retention = args->change_feed_retention_days * kSecondsPerDay;
    options.automation_scheduler = !args->no_scheduler;
    options.scheduler_interval = std::chrono::milliseconds(args->scheduler_interval_ms);
    options.webhook_dispatch_interval = std::chrono::milliseconds(args->dispatch_interval_ms);
    options.webhook_timeout = std::chrono::milliseconds(args->webhook_timeout_ms);
    api::Server server(**store, clock, options);
    Status started = server.start();
    if (started.is_ok()) {
      // After the error log is open: a crash is reported there with its request id.
      api::install_crash_logging(server.error_log_fd());
    }
    if (!started.is_ok()) {
      std::cerr << "fulcrum serve: " << started.to_string() << "\n";
      return 1;
    }
    std::cout << "fulcrum serving on " << (options.tls_cert_file.empty() ? "http" : "https")
              << "://" << options.address << ":" << server.port()
              << " (store " << location << ", key file " << keys->keyring->path() << ")"
              << std::endl;
    server.wait();
    std::cout << "fulcrum serve: stopped" << std::endl;
    return 0;
  };
}

const CommandRegistration kServe("serve", setup_serve);

}  // namespace
}  // namespace fulcrum::cli
