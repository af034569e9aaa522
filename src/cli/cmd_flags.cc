// `fulcrum flags list|get|create|update|archive|kill`: feature flags in the store, the same
// operations as the admin API (flags/service.h). Definitions are JSON (the API's body),
// given with --json TEXT or --file PATH ("-" reads stdin). Every change is appended to the
// audit log with actor "cli"; bad input prints the offending field and exits 1.
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "api/audit.h"
#include "cli/command_registry.h"
#include "cli/key_file.h"
#include "core/time.h"
#include "core/untrusted_json.h"
#include "flags/service.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

using json = nlohmann::json;

struct FlagArgs {
  std::string key, json_text, file;
  bool archived = false, undo = false;
};

Result<json> read_definition(const FlagArgs& args) {
  std::string text = args.json_text;
  if (!args.file.empty()) {
    if (args.file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      std::ifstream in(args.file);
      if (!in) return invalid_argument("cannot read " + args.file, "--file");
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  if (text.empty()) return invalid_argument("give the flag as --json TEXT or --file PATH", "--json");
  Result<json> body = parse_untrusted_json_object(text, "--json");
  if (!body.is_ok()) return body.status();
  return std::move(body).value();
}

int report(const char* command, const Status& status) {
  std::cerr << "fulcrum flags " << command << ": " << status.message();
  if (!status.field().empty()) std::cerr << " (field: " << status.field() << ")";
  std::cerr << "\n";
  return 1;
}

CommandRunner setup_flags(CLI::App& app, const GlobalOptions& global) {
  app.description("Feature flags: list, get, create, update, archive, kill switch");
  app.require_subcommand(1);
  auto args = std::make_shared<FlagArgs>();
  auto add_definition = [&](CLI::App* sub) {
    sub->add_option("--json", args->json_text, "the flag (or the fields to change) as JSON");
    sub->add_option("--file", args->file, "read the JSON from this file (- for stdin)");
  };
  CLI::App* list = app.add_subcommand("list", "List flags (key, type, rules, state)");
  list->add_flag("--archived", args->archived, "include archived flags");
  CLI::App* get = app.add_subcommand("get", "Print one flag as JSON");
  get->add_option("key", args->key)->required();
  CLI::App* create = app.add_subcommand("create", "Create a flag from its JSON definition");
  add_definition(create);
  CLI::App* update = app.add_subcommand("update", "Replace top-level fields of a flag");
  update->add_option("key", args->key)->required();
  add_definition(update);
  CLI::App* archive = app.add_subcommand("archive", "Archive a flag (SDKs stop receiving it)");
  archive->add_option("key", args->key)->required();
  archive->add_flag("--undo", args->undo, "unarchive");
  CLI::App* kill = app.add_subcommand("kill", "Kill switch: serve the off value to everyone");
  kill->add_option("key", args->key)->required();
  kill->add_flag("--undo", args->undo, "turn the kill switch off again");

  return [&global, args, list, get, create, update, archive, kill]() -> int {
    auto opened = open_store(global.store);
    if (!opened.is_ok()) {
      std::cerr << "fulcrum flags: cannot open store " << global.store << ": "
                << opened.status().to_string() << "\n";
      return 1;
    }
    std::unique_ptr<Store> store = std::move(opened).value();
    SystemClock clock;
    const bool changes = !list->parsed() && !get->parsed();
    std::optional<OpenedKeys> keys;
    if (changes) {
      keys = open_key_file(global, *store, clock, /*create=*/true, "flags");
      if (!keys) return 1;
    }
    if (list->parsed()) {
      auto flags = flags::list_flags(*store, args->archived);
      if (!flags.is_ok()) return report("list", flags.status());
      std::cout << "key\tvalue_type\tdefault_value\trules\tstate\tversion\n";
      for (const flags::Flag& flag : *flags) {
        std::cout << flag.key << "\t" << flags::value_type_name(flag.type) << "\t"
                  << flag.default_value.dump() << "\t" << flag.rules.size() << "\t"
                  << (flag.archived ? "archived" : flag.killed ? "killed" : "active") << "\t"
                  << flag.version << "\n";
      }
      return 0;
    }
    if (get->parsed()) {
      auto flag = flags::get_flag(*store, args->key);
      if (!flag.is_ok()) return report("get", flag.status());
      std::cout << flags::to_json(*flag).dump(2) << "\n";
      return 0;
    }
    Result<flags::Flag> changed = invalid_argument("no subcommand");
    const char* name = "";
    std::string action;
    if (create->parsed() || update->parsed()) {
      name = create->parsed() ? "create" : "update";
      auto definition = read_definition(*args);
      if (!definition.is_ok()) return report(name, definition.status());
      if (create->parsed()) {
        changed = flags::create_flag(*store, clock, *definition, "cli");
        args->key = definition->value("key", std::string());
      } else {
        changed = flags::update_flag(*store, clock, args->key, *definition, "cli");
      }
      action = std::string("flags.") + name;
    } else if (archive->parsed()) {
      name = "archive";
      changed = flags::set_flag_archived(*store, clock, args->key, !args->undo, "cli");
      action = args->undo ? "flags.unarchive" : "flags.archive";
    } else if (kill->parsed()) {
      name = "kill";
      changed = flags::set_flag_killed(*store, clock, args->key, !args->undo, "cli");
      action = args->undo ? "flags.unkill" : "flags.kill";
    } else {
      return 2;
    }
    audit_cli_action(*store, *keys, clock, action, args->key,
                     changed.is_ok() ? "ok" : "error: " + changed.status().message(), "flags");
    if (!changed.is_ok()) return report(name, changed.status());
    std::cout << flags::to_json(*changed).dump(2) << "\n";
    return 0;
  };
}

const CommandRegistration kFlags("flags", setup_flags);

}  // namespace
}  // namespace fulcrum::cli
