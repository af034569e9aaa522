// Targeting conditions: the GrowthBook/MongoDB-style condition language evaluated against a
// user's attributes (packages/sdk-js/src/mongrule.ts), e.g.
//   {"tier": "free", "country": {"$in": ["GB", "IE"]}, "app_version": {"$vgte": "5.2.0"}}
// Supported: implicit equality, $eq $ne $gt $gte $lt $lte (JavaScript comparison rules),
// $in $nin $ini $nini $all $alli $elemMatch $size $exists $type $regex $regexi $not, the
// version operators $veq $vne $vgt $vgte $vlt $vlte, and $and $or $nor $not at the top level.
// Attribute paths may be dotted ("address.country"); a missing attribute reads as null.
// Evaluation mirrors the SDK (unknown operators fail the match); validate_condition is the
// strict check for conditions people type, naming the offending path.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace fulcrum::assign {

// True when `attributes` (a JSON object) satisfies `condition` (a JSON object; {} matches all).
bool eval_condition(const nlohmann::json& attributes, const nlohmann::json& condition);

// OK, or kInvalidArgument naming the path ("targeting.app_version.$vgtt") of the first
// unknown operator, malformed operand (e.g. $in without an array, invalid $regex) or
// non-object condition.
Status validate_condition(const nlohmann::json& condition, const std::string& field = "targeting");

}  // namespace fulcrum::assign
