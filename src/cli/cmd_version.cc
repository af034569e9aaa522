#include <iostream>

#include "cli/command_registry.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

// `fulcrum migrate`: opens the store (creating it) and applies pending schema migrations.
const CommandRegistration kMigrate{"migrate", [](CLI::App& app, const GlobalOptions& global) {
  app.description("Create the store or apply pending schema migrations");
  return CommandRunner([&global]() {
    auto store = open_store(global.store);
    if (!store.is_ok()) {
      std::cerr << "fulcrum migrate: " << store.status().to_string() << "\n";
      return 1;
    }
    auto version = (*store)->schema_version();
    if (!version.is_ok()) {
      std::cerr << "fulcrum migrate: " << version.status().to_string() << "\n";
      return 1;
    }
    std::cout << "store " << global.store << " at schema version " << *version << "\n";
    return 0;
  });
}};

}  // namespace
}  // namespace fulcrum::cli
