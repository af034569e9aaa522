// `fulcrum holdouts list|get|create|update|stop|impact`: global holdouts in the store, the
// same operations as the admin API (experiments/holdout.h). Every change is appended to the
// audit log with actor "cli"; bad input prints the offending field and exits 1.
#include <iostream>
#include <memory>

#include "api/audit.h"
#include "cli/command_registry.h"
#include "cli/key_file.h"
#include "core/time.h"
#include "experiments/holdout.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

using json = nlohmann::json;

struct HoldoutArgs {
  std::string holdout_id, name, description, hash_attribute, seed, start_date;
  std::string percent;  // as typed: a number is sent as one, anything else is refused
  std::vector<std::string> metrics;
  double alpha = 0.05;
};

int fail(const char* command, const Status& status) {
  std::cerr << "fulcrum holdouts " << command << ": " << status.message();
  if (!status.field().empty()) std::cerr << " (field: " << status.field() << ")";
  std::cerr << "\n";
  return 1;
}

// The request body of create/update from the options that were given.
json request_of(const HoldoutArgs& args, bool create) {
  json body = json::object();
  if (create && !args.holdout_id.empty()) body["holdout_id"] = args.holdout_id;
  if (!args.name.empty()) body["name"] = args.name;
  if (!args.description.empty()) body["description"] = args.description;
  if (!args.metrics.empty()) body["metrics"] = args.metrics;
  if (create) {
    if (!args.percent.empty()) {
      const json number = json::parse(args.percent, nullptr, /*allow_exceptions=*/false);
      body["percent"] = number.is_number() ? number : json(args.percent);
    }
    if (!args.hash_attribute.empty()) body["hash_attribute"] = args.hash_attribute;
    if (!args.seed.empty()) body["seed"] = args.seed;
    if (!args.start_date.empty()) body["start_date"] = args.start_date;
  }
  return body;
}

CommandRunner setup_holdouts(CLI::App& app, const GlobalOptions& global) {
  app.description("Global holdouts: list, get, create, update, stop, cumulative impact");
  app.require_subcommand(1);
  auto args = std::make_shared<HoldoutArgs>();
  auto add_editable = [&](CLI::App* sub) {
    sub->add_option("--name", args->name, "display name");
    sub->add_option("--description", args->description, "what the holdout measures");
    sub->add_option("--metrics", args->metrics,
                    "metric names (default conversion_rate, "
                    "revenue_per_user)")
        ->delimiter(',');
  };
  CLI::App* list = app.add_subcommand("list", "List holdouts (id, percent, status, start)");
  CLI::App* get = app.add_subcommand("get", "Print one holdout as JSON");
  get->add_option("holdout_id", args->holdout_id)->required();
  CLI::App* create = app.add_subcommand("create", "Create a running holdout");
  create->add_option("--id", args->holdout_id, "holdout id (default: generated)");
  add_editable(create);
  create->add_option("--percent", args->percent, "percent of users held out, (0, 20] (5)");
  create->add_option("--hash-attribute", args->hash_attribute, "attribute hashed (id)");
  create->add_option("--seed", args->seed, "hash seed (default: the id)");
  create->add_option("--start-date", args->start_date, "ISO-8601 start (default: now)");
  CLI::App* update = app.add_subcommand("update", "Change name, description or metrics");
  update->add_option("holdout_id", args->holdout_id)->required();
  add_editable(update);
  CLI::App* stop = app.add_subcommand("stop", "Stop a holdout: its users are released");
  stop->add_option("holdout_id", args->holdout_id)->required();
  CLI::App* impact = app.add_subcommand("impact", "Cumulative impact by month, as JSON");
  impact->add_option("holdout_id", args->holdout_id)->required();
  impact->add_option("--alpha", args->alpha, "two-sided significance level (0.05)");

  return [&global, args, list, get, create, update, stop, impact]() -> int {
    auto opened = open_store(global.store);
    if (!opened.is_ok()) {
      std::cerr << "fulcrum holdouts: cannot open store " << global.store << ": "
                << opened.status().to_string() << "\n";
      return 1;
    }
    std::unique_ptr<Store> store = std::move(opened).value();
    SystemClock clock;
    if (list->parsed()) {
      auto holdouts = experiments::list_holdouts(*store);
      if (!holdouts.is_ok()) return fail("list", holdouts.status());
      std::cout << "holdout_id\tname\tpercent\thash_attribute\tstatus\tstarted_at\n";
      for (const experiments::Holdout& h : *holdouts) {
        std::cout << h.holdout_id << "\t" << h.name << "\t" << json(h.percent).dump() << "\t"
                  << h.hash_attribute << "\t" << experiments::holdout_status_name(h.status) << "\t"
                  << format_iso8601(h.started_at) << "\n";
      }
      return 0;
    }
    if (get->parsed()) {
      auto holdout = experiments::get_holdout(*store, args->holdout_id);
      if (!holdout.is_ok()) return fail("get", holdout.status());
      std::cout << experiments::to_json(*holdout).dump(2) << "\n";
      return 0;
    }
    if (impact->parsed()) {
      if (!(args->alpha > 0 && args->alpha < 1)) {
        return fail("impact", invalid_argument("must be in (0, 1)", "--alpha"));
      }
      auto result = experiments::holdout_impact(*store, clock, args->holdout_id, args->alpha);
      if (!result.is_ok()) return fail("impact", result.status());
      std::cout << result->dump(2) << "\n";
      return 0;
    }
    auto keys = open_key_file(global, *store, clock, /*create=*/true, "holdouts");
    if (!keys) return 1;
    Result<experiments::Holdout> changed = invalid_argument("no subcommand");
    const char* name = "";
    if (create->parsed()) {
      name = "create";
      changed = experiments::create_holdout(*store, clock, request_of(*args, true), "cli");
      if (changed.is_ok()) args->holdout_id = changed->holdout_id;
    } else if (update->parsed()) {
      name = "update";
      changed = experiments::update_holdout(*store, clock, args->holdout_id,
                                            request_of(*args, false), "cli");
    } else if (stop->parsed()) {
      name = "stop";
      changed = experiments::stop_holdout(*store, clock, args->holdout_id, "cli");
    } else {
      return 2;
    }
    audit_cli_action(*store, *keys, clock, std::string("holdouts.") + name, args->holdout_id,
                     changed.is_ok() ? "ok" : "error: " + changed.status().message(), "holdouts");
    if (!changed.is_ok()) return fail(name, changed.status());
    std::cout << experiments::to_json(*changed).dump(2) << "\n";
    return 0;
  };
}

const CommandRegistration kHoldouts("holdouts", setup_holdouts);

}  // namespace
}  // namespace fulcrum::cli
