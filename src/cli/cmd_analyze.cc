// `fulcrum analyze --input FILE.json`: runs the statistics engine
// (stats/analysis.h) on per-group sufficient statistics and prints the results
// as JSON. The input schema is in docs/analyze-input.md. Bad input exits 2 with
// the offending field named on stderr.
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command_registry.h"
#include "stats/analysis_json.h"

namespace fulcrum::cli {
namespace {

constexpr int kBadInput = 2;

int report_error(const Status& status) {
  std::cerr << "fulcrum analyze: ";
  if (!status.field().empty()) std::cerr << status.field() << ": ";
  std::cerr << status.message() << "\n";
  return kBadInput;
}

CommandRunner setup_analyze(CLI::App& app, const GlobalOptions&) {
  app.description(
      "Analyze an A/B test from per-group sufficient statistics "
      "(JSON in, JSON out; "
      "schema in docs/analyze-input.md)");
  auto input_path = std::make_shared<std::string>();
  app.add_option("--input", *input_path, "JSON file with the statistics, or - for stdin")
      ->required();
  return [input_path]() -> int {
    std::stringstream text;
    if (*input_path == "-") {
      text << std::cin.rdbuf();
    } else {
      std::ifstream file(*input_path);
      if (!file) {
        std::cerr << "fulcrum analyze: --input: cannot read " << *input_path << "\n";
        return kBadInput;
      }
      text << file.rdbuf();
    }
    auto input = stats::parse_analysis_input(text.str());
    if (!input) return report_error(input.status());
    auto output = stats::analyze(*input);
    if (!output) return report_error(output.status());
    std::cout << stats::analysis_output_to_json(*output).dump(2) << "\n";
    return 0;
  };
}

const CommandRegistration kAnalyze("analyze", setup_analyze);

}  // namespace
}  // namespace fulcrum::cli
