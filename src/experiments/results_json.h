// JSON forms shared by the parts of the results document (results.cc, cupac.cc).
#pragma once

#include <nlohmann/json.hpp>

#include "stats/hypothesis.h"

namespace fulcrum::experiments {

// {estimate, standard_error, ci: [lower, upper], p_value}; a non-finite number is null.
nlohmann::json effect_json(const stats::EffectTest& test);

}  // namespace fulcrum::experiments
