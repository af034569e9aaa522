// JavaScript value semantics for JSON values, so conditions and hashing read attributes the
// way the GrowthBook JavaScript SDK does (String(v), Number(v), !!v, toString in util.ts).
// Internal to fulcrum_assign (condition.cc, evaluator.cc); not a general-purpose API.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace fulcrum::assign::js {

// String(v): numbers in JavaScript's shortest round-trip form ("1", "1.5", "1e+21"),
// arrays joined by "," (null elements empty), objects "[object Object]".
std::string string_of(const nlohmann::json& v);
// Number(v): NaN for objects and unparseable text; arrays via their string form.
double number_of(const nlohmann::json& v);
// !!v
bool truthy(const nlohmann::json& v);
// util.ts toString: strings as they are, anything else JSON.stringify'd.
std::string to_string(const nlohmann::json& v);
// a === b for primitives (objects and arrays are never === a different value).
bool strict_equal(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace fulcrum::assign::js
