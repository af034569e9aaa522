// The feature-flag model: a flag is a key, a value type, a default value and ordered rules,
// plus a kill switch and an archived mark. Flags are stored as Store documents (kind
// "flag", id = key) so every change bumps the document version (optimistic concurrency).
//
// JSON form (snake_case like the rest of the API):
//   {"key": "new_checkout", "value_type": "boolean" | "string" | "number" | "json",
//    "default_value": false, "description": "...", "tags": ["payments"],
//    "rules": [
//      {"id": "staff", "type": "force", "condition": {"segment": "staff"}, "value": true},
//      {"id": "rollout", "type": "force", "value": true, "coverage": 0.2,
//       "hash_attribute": "id", "seed": "new_checkout"},
//      {"id": "exp", "type": "experiment", "key": "checkout-exp", "condition": {...},
//       "variations": [{"name": "control", "value": false}, {"name": "new", "value": true}],
//       "weights": [0.5, 0.5], "coverage": 1, "hash_attribute": "id", "seed": "checkout-exp",
//       "hash_version": 2, "namespace": {"id": "checkout", "start": 0, "end": 0.5},
//       "holdout_id": "holdout_2026"}],
//    "killed": false, "archived": false}
// plus read-only "version", "created_at", "updated_at", "updated_by".
//
// Rules are evaluated in order, first match wins (GrowthBook semantics). A force rule with
// coverage is a percentage rollout: a user gets its value when hash(seed, user) < coverage.
// Parsing is strict: unknown fields, wrong types, values that do not match value_type,
// conditions with unknown operators (assign::validate_condition), weights that do not match
// the variations are kInvalidArgument naming the field ("rules[1].weights").
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "assign/buckets.h"
#include "core/status.h"
#include "core/time.h"

namespace fulcrum::flags {

enum class ValueType { kBoolean, kString, kNumber, kJson };
const char* value_type_name(ValueType type);
std::optional<ValueType> parse_value_type(std::string_view name);
// True when `value` is of `type` (json: an object or an array).
bool value_matches(ValueType type, const nlohmann::json& value);

struct Variation {
  std::string name;  // the variant name SDKs report (meta key), unique within the rule
  nlohmann::json value;
};

struct Rule {
  enum class Kind { kForce, kExperiment };
  std::string id;  // unique within the flag; generated when not given
  Kind kind = Kind::kForce;
  std::string description;
  bool enabled = true;
  nlohmann::json condition = nlohmann::json::object();  // {} matches everyone
  std::string hash_attribute = "id";
  std::string seed;  // empty: the flag key (force) or the experiment key (experiment)
  // A running holdout the rule opted into ("" = none, experiments/holdout.h): the payload
  // puts the holdout's rule before this one, so held-out users get the flag's default value.
  std::string holdout_id;
  // force
  nlohmann::json value;
  std::optional<double> coverage;  // force: rollout share; experiment: share entering (default 1)
  // experiment
  std::string experiment_key;  // empty: the flag key
  std::vector<Variation> variations;
  std::vector<double> weights;  // same length as variations
  int hash_version = 2;
  std::optional<assign::Namespace> ns;
};

struct Flag {
  std::string key;
  ValueType type = ValueType::kBoolean;
  nlohmann::json default_value;
  std::string description;
  std::vector<std::string> tags;
  std::vector<Rule> rules;
  bool killed = false;    // kill switch: every user gets the off value, no rule or test runs
  bool archived = false;  // not served to SDKs at all (they fall back to their code default)
  UnixSeconds created_at = 0, updated_at = 0;
  std::string updated_by;
  std::int64_t version = 0;  // store document version

  // What a killed flag serves: false for boolean flags, the default value otherwise.
  nlohmann::json off_value() const;
};

// Flag keys: 1..100 characters of [A-Za-z0-9_.:-], starting with a letter or digit.
bool is_valid_flag_key(std::string_view key);

// Parses the editable fields of a flag (key, value_type, default_value, description, tags,
// rules, killed, archived); read-only fields are rejected. Rule ids missing in the request
// are generated.
Result<Flag> parse_flag(const nlohmann::json& request);
// Full JSON (editable + read-only fields); parse_flag(to_json(f) minus read-only) == f.
nlohmann::json to_json(const Flag& flag);
// The stored document body back into a Flag (lenient about read-only fields).
Result<Flag> flag_from_json(const nlohmann::json& body);

}  // namespace fulcrum::flags
