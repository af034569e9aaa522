#include <iostream>
#include <map>

#include "cli/command_registry.h"

namespace fulcrum::cli {
std::vector<CommandEntry>& command_entries() {
  static std::vector<CommandEntry> entries;
  return entries;
}
}  // namespace fulcrum::cli

int main(int argc, char** argv) {
  using namespace fulcrum::cli;
  CLI::App app{"Fulcrum: automated product optimization (A/B tests, recommendations, "
               "upgrade timing, retention campaigns, feature sunset)"};
  app.require_subcommand(1);
  GlobalOptions global;
  app.add_option("--store", global.store,
                 "SQLite database file, or a postgres:// URL (default fulcrum.db)")
      ->envname("FULCRUM_STORE");
  app.add_option("--key-file", global.key_file,
                 "Key file (token signing keys, audit key); beats FULCRUM_KEY_FILE, which beats "
                 "<sqlite file>.keys. Required for a postgres:// store");
  std::map<CLI::App*, CommandRunner> runners;
  for (const auto& entry : command_entries()) {
    CLI::App* sub = app.add_subcommand(entry.name);
    runners[sub] = entry.setup(*sub, global);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  for (auto& [sub, run] : runners) {
    if (sub->parsed()) {
      try {
        return run();
      } catch (const std::exception& error) {
        std::cerr << "fulcrum " << sub->get_name() << ": " << error.what() << "\n";
        return 1;
      }
    }
  }
  return 2;
}
