// Children of `fulcrum evaluate`: several domains add offline evaluations
// (recommendations, upgrade-timing, churn), so the `evaluate` subcommand (cmd_evaluate.cc)
// keeps its own small registry, built like command_registry.h. A domain adds a child by
// defining a static EvaluateRegistration in its own src/cli/*.cc file.
#pragma once

#include <string>
#include <vector>

#include "cli/command_registry.h"

namespace fulcrum::cli {

// `setup` receives the child sub-subcommand (e.g. `fulcrum evaluate churn`) to add its
// options to, and returns what to run when that child was chosen.
struct EvaluateEntry {
  std::string name;
  std::string description;
  CommandSetup setup;
};

std::vector<EvaluateEntry>& evaluate_entries();

struct EvaluateRegistration {
  EvaluateRegistration(std::string name, std::string description, CommandSetup setup) {
    evaluate_entries().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

}  // namespace fulcrum::cli
