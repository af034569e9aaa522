// JSON mapping of the analysis for the `fulcrum analyze` command and the HTTP
// results route. The input schema is documented in docs/analyze-input.md;
// unknown keys are rejected so a typo never silently falls back to a default.
// Errors carry the JSON path of the offending field
// ("metrics[0].groups.variant.n").
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string_view>

#include "stats/analysis.h"

namespace fulcrum::stats {

Result<AnalysisInput> analysis_input_from_json(const nlohmann::json& document);
// Parses text first; malformed JSON is an invalid_argument with an empty field.
Result<AnalysisInput> parse_analysis_input(std::string_view text);
nlohmann::json analysis_output_to_json(const AnalysisOutput& output);
// A slice table's post-stratification block ({strata_used, strata_merged, treatments: [...]},
// or {unavailable: reason}); null when it was not asked for.
nlohmann::json post_stratification_to_json(const AnalysisOutput::SliceTable& table);
// {"margin", "non_inferior", "harmed", "non_inferiority_p_value", "harm_p_value",
//  "worst_case_lift"}, also used by the results route.
nlohmann::json guardrail_check_to_json(const GuardrailCheck& check);
// {"action", "rule", "metric", "text"}
nlohmann::json ship_decision_to_json(const ShipDecision& decision);

}  // namespace fulcrum::stats
