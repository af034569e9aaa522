// Self-registering subcommands: a cmd_<name>.cc file defines a static CommandRegistration
// whose setup function adds a subcommand to the app and returns the code to run when it
// was chosen. Keeps main.cc free of per-domain edits.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace fulcrum::cli {

// Options every subcommand shares.
struct GlobalOptions {
  std::string store = "fulcrum.db";  // SQLite path or postgres:// URL
  std::string key_file;  // --key-file; empty: FULCRUM_KEY_FILE, else "<store>.keys" (SQLite)
};

// Returns the process exit code.
using CommandRunner = std::function<int()>;
using CommandSetup = std::function<CommandRunner(CLI::App& app, const GlobalOptions& global)>;

struct CommandEntry {
  std::string name;
  CommandSetup setup;
};

std::vector<CommandEntry>& command_entries();

struct CommandRegistration {
  CommandRegistration(std::string name, CommandSetup setup) {
    command_entries().push_back({std::move(name), std::move(setup)});
  }
};

}  // namespace fulcrum::cli
