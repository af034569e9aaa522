// `fulcrum evaluate <child>`: offline model evaluations. Children register themselves via
// evaluate_registry.h so each domain owns its own evaluation code.
#include <map>
#include <memory>

#include "cli/evaluate_registry.h"

namespace fulcrum::cli {

std::vector<EvaluateEntry>& evaluate_entries() {
  static std::vector<EvaluateEntry> entries;
  return entries;
}

namespace {

CommandRunner setup_evaluate(CLI::App& app, const GlobalOptions& global) {
  app.description("Evaluate a model offline on a time-split holdout of stored history");
  app.require_subcommand(1);
  // Shared by pointer: the runner is invoked after parsing, when exactly one child parsed.
  auto runners = std::make_shared<std::map<CLI::App*, CommandRunner>>();
  for (const auto& entry : evaluate_entries()) {
    CLI::App* child = app.add_subcommand(entry.name, entry.description);
    (*runners)[child] = entry.setup(*child, global);
  }
  return [runners]() {
    for (auto& [child, run] : *runners) {
      if (child->parsed()) return run();
    }
    return 2;
  };
}

const CommandRegistration kEvaluate("evaluate", setup_evaluate);

}  // namespace
}  // namespace fulcrum::cli
