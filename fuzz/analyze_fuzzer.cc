// `fulcrum analyze` input: parse, analyse and serialize the output, as the command does.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "stats/analysis.h"
#include "stats/analysis_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto input = fulcrum::stats::parse_analysis_input(text);
  if (!input.is_ok()) return 0;
  auto output = fulcrum::stats::analyze(*input);
  if (!output.is_ok()) return 0;
  (void)fulcrum::stats::analysis_output_to_json(*output).dump(2);
  return 0;
}
