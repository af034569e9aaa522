#include "assign/condition.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <regex>
#include <string_view>

#include "assign/version.h"
#include "core/limits.h"
#include "core/untrusted_json.h"

namespace fulcrum::assign {
namespace {

using json = nlohmann::json;

const json& null_json() {
  static const json kNull;
  return kNull;
}

// Dot-path lookup; anything missing is null (as getPath in the SDK).
const json& get_path(const json& obj, std::string_view path) {
  const json* current = &obj;
  std::size_t begin = 0;
  while (true) {
    const auto dot = path.find('.', begin);
    const auto part = path.substr(begin, dot == std::string_view::npos ? path.npos : dot - begin);
    if (current->is_object()) {
      auto it = current->find(std::string(part));
      if (it == current->end()) return null_json();
      current = &*it;
    } else if (current->is_array()) {
      std::size_t index = 0;
      auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
      if (ec != std::errc() || p != part.data() + part.size() || index >= current->size()) {
        return null_json();
      }
      current = &(*current)[index];
    } else {
      return null_json();
    }
    if (dot == std::string_view::npos) return *current;
    begin = dot + 1;
  }
}

// JavaScript String(value) for primitives.
std::string js_string(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "null";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isnan(d)) return "NaN";
    char buf[32];
    if (d == std::floor(d) && std::fabs(d) < 1e21) {
      // JavaScript prints integral values below 1e21 in full ("100000000000000000000");
      // a cast to int64 would overflow above 9.2e18.
      auto end = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed, 0).ptr;
      return std::string(buf, end);
    }
    auto end = std::to_chars(buf, buf + sizeof buf, d).ptr;
    return std::string(buf, end);
  }
  return dump_json(v);
}

// JavaScript Number(value) for primitives (NaN for objects/arrays/unparseable text).
double js_number(const json& v) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (v.is_number()) return v.get<double>();
  if (v.is_null()) return 0;
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_string()) {
    std::string_view s = v.get_ref<const std::string&>();
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    if (s.empty()) return 0;
    double out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || p != s.data() + s.size()) return kNaN;
    return out;
  }
  return kNaN;
}

bool js_truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) {
    const double d = v.get<double>();
    return d != 0 && !std::isnan(d);
  }
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return true;
}

bool is_primitive(const json& v) { return !v.is_object() && !v.is_array(); }

// JavaScript ===: same type and value for primitives; objects compare by identity, which
// between an attribute and a literal is never true.
bool strict_equal(const json& a, const json& b) {
  if (!is_primitive(a) || !is_primitive(b)) return false;
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

// JavaScript abstract relational comparison a < b for primitives: two strings compare as
// text, anything else numerically (NaN compares false).
enum class Rel { kLess, kLessEqual, kGreater, kGreaterEqual };
bool js_compare(const json& a, const json& b, Rel rel) {
  if (a.is_string() && b.is_string()) {
    const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    switch (rel) {
      case Rel::kLess:
        return c < 0;
      case Rel::kLessEqual:
        return c <= 0;
      case Rel::kGreater:
        return c > 0;
      case Rel::kGreaterEqual:
        return c >= 0;
    }
  }
  if (!is_primitive(a) || !is_primitive(b)) return false;
  const double x = js_number(a), y = js_number(b);
  switch (rel) {
    case Rel::kLess:
      return x < y;
    case Rel::kLessEqual:
      return x <= y;
    case Rel::kGreater:
      return x > y;
    case Rel::kGreaterEqual:
      return x >= y;
  }
  return false;
}

std::string version_text(const json& v) {
  if (v.is_number()) return js_string(v);
  if (!v.is_string()) return "0";
  return v.get<std::string>();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_operator_object(const json& v) {
  if (!v.is_object() || v.empty()) return false;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key().empty() || it.key()[0] != '$') return false;
  }
  return true;
}

// Every recursive step below passes depth + 1; past kMaxDepth a condition fails to match
// (validate_condition refuses such conditions up front, so only a stored or hand-built one
// can get there), which bounds the call stack whatever the documents hold.
constexpr int kMaxDepth = 2 * static_cast<int>(limits::kMaxConditionDepth) + 8;

bool eval_condition_at(const json& attributes, const json& condition, int depth);
bool eval_value(const json& condition, const json& value, int depth, bool insensitive = false);

bool includes(const json& expected, const json& actual, bool insensitive) {
  for (const auto& e : expected) {
    if (insensitive && e.is_string() && actual.is_string()) {
      if (lower(e.get<std::string>()) == lower(actual.get<std::string>())) return true;
    } else if (strict_equal(e, actual)) {
      return true;
    }
  }
  return false;
}

bool is_in(const json& actual, const json& expected, bool insensitive) {
  if (actual.is_array()) {
    for (const auto& el : actual) {
      if (includes(expected, el, insensitive)) return true;
    }
    return false;
  }
  return includes(expected, actual, insensitive);
}

bool is_in_all(const json& actual, const json& expected, int depth, bool insensitive) {
  if (!actual.is_array()) return false;
  for (const auto& e : expected) {
    bool passed = false;
    for (const auto& a : actual) {
      if (eval_value(e, a, depth + 1, insensitive)) {
        passed = true;
        break;
      }
    }
    if (!passed) return false;
  }
  return true;
}

// libstdc++'s regex matcher recurses per input character, so patterns and the text they
// run over are bounded (validate_condition refuses longer patterns).
constexpr std::size_t kMaxRegexBytes = 256;
constexpr std::size_t kMaxRegexSubjectBytes = 1024;

bool regex_test(const json& pattern, const json& actual, bool insensitive) {
  if (!pattern.is_string() || pattern.get_ref<const std::string&>().size() > kMaxRegexBytes) {
    return false;
  }
  if (js_string(actual).size() > kMaxRegexSubjectBytes) return false;
  try {
    auto flags = std::regex::ECMAScript;
    if (insensitive) flags |= std::regex::icase;
    const std::regex re(pattern.get<std::string>(), flags);
    return std::regex_search(js_string(actual), re);
  } catch (const std::regex_error&) {
    return false;
  }
}

const char* type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_number()) return "number";
  if (v.is_boolean()) return "boolean";
  return "object";
}

bool elem_match(const json& actual, const json& expected, int depth) {
  if (!actual.is_array()) return false;
  const bool op = is_operator_object(expected);
  for (const auto& item : actual) {
    if (!js_truthy(item)) continue;  // the SDK skips falsy elements
    if (op ? eval_value(expected, item, depth + 1)
           : eval_condition_at(item, expected, depth + 1)) {
      return true;
    }
  }
  return false;
}

bool eval_operator(std::string_view op, const json& actual, const json& expected, int depth) {
  if (op == "$veq") return compare_versions(version_text(actual), version_text(expected)) == 0;
  if (op == "$vne") return compare_versions(version_text(actual), version_text(expected)) != 0;
  if (op == "$vgt") return compare_versions(version_text(actual), version_text(expected)) > 0;
  if (op == "$vgte") return compare_versions(version_text(actual), version_text(expected)) >= 0;
  if (op == "$vlt") return compare_versions(version_text(actual), version_text(expected)) < 0;
  if (op == "$vlte") return compare_versions(version_text(actual), version_text(expected)) <= 0;
  if (op == "$eq") return strict_equal(actual, expected);
  if (op == "$ne") return !strict_equal(actual, expected);
  if (op == "$lt") return js_compare(actual, expected, Rel::kLess);
  if (op == "$lte") return js_compare(actual, expected, Rel::kLessEqual);
  if (op == "$gt") return js_compare(actual, expected, Rel::kGreater);
  if (op == "$gte") return js_compare(actual, expected, Rel::kGreaterEqual);
  if (op == "$exists") return js_truthy(expected) ? !actual.is_null() : actual.is_null();
  if (op == "$in") return expected.is_array() && is_in(actual, expected, false);
  if (op == "$ini") return expected.is_array() && is_in(actual, expected, true);
  if (op == "$nin") return expected.is_array() && !is_in(actual, expected, false);
  if (op == "$nini") return expected.is_array() && !is_in(actual, expected, true);
  if (op == "$not") return !eval_value(expected, actual, depth + 1);
  if (op == "$size") {
    return actual.is_array() && eval_value(expected, json(actual.size()), depth + 1);
  }
  if (op == "$elemMatch") return elem_match(actual, expected, depth);
  if (op == "$all") return expected.is_array() && is_in_all(actual, expected, depth, false);
  if (op == "$alli") return expected.is_array() && is_in_all(actual, expected, depth, true);
  if (op == "$regex") return regex_test(expected, actual, false);
  if (op == "$regexi") return regex_test(expected, actual, true);
  if (op == "$type")
    return expected.is_string() && expected.get<std::string>() == type_name(actual);
  return false;  // unknown operator: the SDK fails the match
}

bool eval_value(const json& condition, const json& value, int depth, bool insensitive) {
  if (depth > kMaxDepth) return false;
  if (condition.is_string()) {
    if (insensitive) return lower(js_string(value)) == lower(condition.get<std::string>());
    return js_string(value) == condition.get_ref<const std::string&>();
  }
  if (condition.is_number()) return js_number(value) == condition.get<double>();
  if (condition.is_boolean()) return !value.is_null() && js_truthy(value) == condition.get<bool>();
  if (condition.is_null()) return value.is_null();
  if (condition.is_array() || !is_operator_object(condition)) return value == condition;
  for (auto it = condition.begin(); it != condition.end(); ++it) {
    if (!eval_operator(it.key(), value, it.value(), depth)) return false;
  }
  return true;
}

bool eval_or(const json& attributes, const json& conditions, int depth) {
  if (!conditions.is_array() || conditions.empty()) return true;
  for (const auto& c : conditions) {
    if (eval_condition_at(attributes, c, depth + 1)) return true;
  }
  return false;
}

bool eval_and(const json& attributes, const json& conditions, int depth) {
  if (!conditions.is_array()) return true;
  for (const auto& c : conditions) {
    if (!eval_condition_at(attributes, c, depth + 1)) return false;
  }
  return true;
}

// ---- validation -------------------------------------------------------------------------

bool known_value_operator(std::string_view op) {
  static constexpr std::string_view kOps[] = {
      "$veq",  "$vne",       "$vgt", "$vgte",   "$vlt",   "$vlte",   "$eq",  "$ne",   "$lt",
      "$lte",  "$gt",        "$gte", "$exists", "$in",    "$ini",    "$nin", "$nini", "$not",
      "$size", "$elemMatch", "$all", "$alli",   "$regex", "$regexi", "$type"};
  for (auto k : kOps) {
    if (k == op) return true;
  }
  return false;
}

Status validate_value(const json& condition, const std::string& field, int depth);
Status validate_condition_at(const json& condition, const std::string& field, int depth);

Status too_deep(const std::string& field) {
  return invalid_argument("condition nested deeper than " +
                              std::to_string(limits::kMaxConditionDepth) + " levels",
                          field);
}

Status validate_operator(std::string_view op, const json& operand, const std::string& field,
                         int depth) {
  if (!known_value_operator(op)) {
    return invalid_argument("unknown condition operator '" + std::string(op) + "'", field);
  }
  if (op == "$in" || op == "$nin" || op == "$ini" || op == "$nini" || op == "$all" ||
      op == "$alli") {
    if (!operand.is_array()) return invalid_argument(std::string(op) + " needs an array", field);
  }
  if (op.starts_with("$v") && !operand.is_string() && !operand.is_number()) {
    return invalid_argument(std::string(op) + " needs a version string like \"5.2.0\"", field);
  }
  if (op == "$regex" || op == "$regexi") {
    if (!operand.is_string()) return invalid_argument("$regex needs a string", field);
    if (operand.get_ref<const std::string&>().size() > kMaxRegexBytes) {
      return invalid_argument("regular expression longer than " + std::to_string(kMaxRegexBytes) +
                                  " bytes",
                              field);
    }
    try {
      std::regex re(operand.get<std::string>(), std::regex::ECMAScript);
    } catch (const std::regex_error&) {
      return invalid_argument("invalid regular expression", field);
    }
  }
  if (op == "$type") {
    static constexpr std::string_view kTypes[] = {"null",   "array",   "string",
                                                  "number", "boolean", "object"};
    bool ok = false;
    for (auto t : kTypes) ok = ok || (operand.is_string() && operand.get<std::string>() == t);
    if (!ok)
      return invalid_argument("$type must be one of null, array, string, number, boolean, object",
                              field);
  }
  if (op == "$not" || op == "$size") return validate_value(operand, field, depth + 1);
  if (op == "$elemMatch") {
    if (is_operator_object(operand)) return validate_value(operand, field, depth + 1);
    return validate_condition_at(operand, field, depth + 1);
  }
  return Status::ok();
}

Status validate_value(const json& condition, const std::string& field, int depth) {
  if (depth > static_cast<int>(limits::kMaxConditionDepth)) return too_deep(field);
  if (!is_operator_object(condition)) {
    // A literal (string, number, bool, null, array or plain object) means equality; an object
    // mixing "$op" keys and plain keys is almost certainly a typo.
    if (condition.is_object()) {
      for (auto it = condition.begin(); it != condition.end(); ++it) {
        if (!it.key().empty() && it.key()[0] == '$') {
          return invalid_argument("cannot mix operators and plain keys", field + "." + it.key());
        }
      }
    }
    return Status::ok();
  }
  for (auto it = condition.begin(); it != condition.end(); ++it) {
    FULCRUM_RETURN_IF_ERROR(
        validate_operator(it.key(), it.value(), field + "." + it.key(), depth));
  }
  return Status::ok();
}

bool eval_condition_at(const json& attributes, const json& condition, int depth) {
  if (depth > kMaxDepth || !condition.is_object()) return false;
  for (auto it = condition.begin(); it != condition.end(); ++it) {
    const std::string& key = it.key();
    if (key == "$or") {
      if (!eval_or(attributes, it.value(), depth)) return false;
    } else if (key == "$nor") {
      if (eval_or(attributes, it.value(), depth)) return false;
    } else if (key == "$and") {
      if (!eval_and(attributes, it.value(), depth)) return false;
    } else if (key == "$not") {
      if (eval_condition_at(attributes, it.value(), depth + 1)) return false;
    } else if (!eval_value(it.value(), get_path(attributes, key), depth + 1)) {
      return false;
    }
  }
  return true;
}

Status validate_condition_at(const json& condition, const std::string& field, int depth) {
  if (depth > static_cast<int>(limits::kMaxConditionDepth)) return too_deep(field);
  if (!condition.is_object()) return invalid_argument("a condition must be a JSON object", field);
  for (auto it = condition.begin(); it != condition.end(); ++it) {
    const std::string& key = it.key();
    const std::string path = field + "." + key;
    if (key == "$or" || key == "$nor" || key == "$and") {
      if (!it.value().is_array())
        return invalid_argument(key + " needs an array of conditions", path);
      for (std::size_t i = 0; i < it.value().size(); ++i) {
        FULCRUM_RETURN_IF_ERROR(
            validate_condition_at(it.value()[i], path + "[" + std::to_string(i) + "]", depth + 1));
      }
    } else if (key == "$not") {
      FULCRUM_RETURN_IF_ERROR(validate_condition_at(it.value(), path, depth + 1));
    } else if (key.empty()) {
      return invalid_argument("empty attribute name", path);
    } else {
      FULCRUM_RETURN_IF_ERROR(validate_value(it.value(), path, depth));
    }
  }
  return Status::ok();
}

}  // namespace

bool eval_condition(const json& attributes, const json& condition) {
  return eval_condition_at(attributes, condition, 0);
}

Status validate_condition(const json& condition, const std::string& field) {
  // The serialized size bounds the work of every later evaluation ($in lists, regexes); the
  // depth check (iterative) comes first so that serializing cannot recurse deeply.
  if (json_depth_exceeds(condition, JsonLimits::kDefaultMaxDepth)) return too_deep(field);
  if (condition.is_object() || condition.is_array()) {
    const std::string text = dump_json(condition);
    if (text.size() > limits::kMaxConditionBytes) {
      return invalid_argument("condition is " + std::to_string(text.size()) +
                                  " bytes of JSON, more than the limit of " +
                                  std::to_string(limits::kMaxConditionBytes),
                              field);
    }
  }
  return validate_condition_at(condition, field, 0);
}

}  // namespace fulcrum::assign
