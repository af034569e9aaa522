// Targeting conditions: the GrowthBook/MongoDB-style condition language evaluated against a
// user's attributes (packages/sdk-js/src/mongrule.ts, SDK spec 0.8.0), e.g.
//   {"tier": "free", "country": {"$in": ["GB", "IE"]}, "app_version": {"$vgte": "5.2.0"}}
// Supported: implicit equality, $eq $ne $gt $gte $lt $lte (JavaScript comparison rules),
// $in $nin $ini $nini $all $alli $elemMatch $size $exists $type $regex $regexi $not, the
// saved-group operators $inGroup $notInGroup (membership in the payload's savedGroups), the
// version operators $veq $vne $vgt $vgte $vlt $vlte, and $and $or $nor $not at any level.
// Attribute paths may be dotted ("address.country"); a missing attribute reads as null.
//
// CompiledCondition parses a condition once (paths split, version operands padded, regular
// expressions built) so matching does no JSON parsing; it is immutable and thread-safe.
// Evaluation mirrors the SDK (unknown operators and invalid regexes fail the match);
// validate_condition is the strict check for conditions people type, naming the path.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace fulcrum::assign {

class CompiledCondition {
 public:
  // Matches everything ({}).
  CompiledCondition();
  // Never fails: like the SDK, what it cannot understand simply does not match.
  static CompiledCondition compile(const nlohmann::json& condition);

  // `attributes` is the user's attribute object; `saved_groups` the payload's savedGroups
  // ({group id: [values]}) or null.
  bool matches(const nlohmann::json& attributes,
               const nlohmann::json* saved_groups = nullptr) const;
  // True for the empty condition {} (lets callers skip work).
  bool matches_everything() const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
};

// True when `attributes` (a JSON object) satisfies `condition` (a JSON object; {} matches all).
// Compiles on every call; hot paths keep a CompiledCondition.
bool eval_condition(const nlohmann::json& attributes, const nlohmann::json& condition,
                    const nlohmann::json* saved_groups = nullptr);

// OK, or kInvalidArgument naming the path ("targeting.app_version.$vgtt") of the first
// unknown operator, malformed operand (e.g. $in without an array, invalid $regex, $inGroup
// without a group id) or non-object condition.
Status validate_condition(const nlohmann::json& condition, const std::string& field = "targeting");

}  // namespace fulcrum::assign
