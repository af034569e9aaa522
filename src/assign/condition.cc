#include "assign/condition.h"

#include <charconv>
#include <cmath>
#include <regex>
#include <string_view>
#include <vector>

#include "assign/js.h"
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

// paddedVersionString accepts numbers and strings; anything else (and "") reads as "0".
std::string version_text(const json& v) {
  if (v.is_number()) return js::string_of(v);
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) return "0";
  return v.get<std::string>();
}

// JavaScript abstract relational comparison (a < b etc.): two strings compare as text,
// anything else numerically after ToPrimitive (arrays through their string form).
enum class Rel { kLess, kLessEqual, kGreater, kGreaterEqual };
bool js_compare(const json& a, const json& b, Rel rel) {
  const bool a_text = a.is_string() || a.is_structured();
  const bool b_text = b.is_string() || b.is_structured();
  if (a_text && b_text) {
    const std::string x = js::string_of(a), y = js::string_of(b);
    const int c = x.compare(y);
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
  const double x = js::number_of(a), y = js::number_of(b);
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

// Array.prototype.includes: SameValueZero (=== except NaN equals NaN).
bool same_value_zero(const json& a, const json& b) {
  if (a.is_number_float() && b.is_number_float() && std::isnan(a.get<double>()) &&
      std::isnan(b.get<double>())) {
    return true;
  }
  return js::strict_equal(a, b);
}

bool includes(const json& expected, const json& actual, bool insensitive) {
  if (!expected.is_array()) return false;
  if (insensitive && actual.is_string()) {
    const std::string folded = lower(actual.get<std::string>());
    for (const auto& e : expected) {
      if (e.is_string() ? lower(e.get<std::string>()) == folded : false) return true;
    }
    return false;
  }
  for (const auto& e : expected) {
    if (insensitive && e.is_string()) continue;  // caseFold(e) is a string, actual is not
    if (same_value_zero(e, actual)) return true;
  }
  return false;
}

// isIn: intersection when the attribute is an array.
bool is_in(const json& actual, const json& expected, bool insensitive) {
  if (actual.is_array()) {
    for (const auto& el : actual) {
      if (includes(expected, el, insensitive)) return true;
    }
    return false;
  }
  return includes(expected, actual, insensitive);
}

const char* type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_number()) return "number";
  if (v.is_boolean()) return "boolean";
  return "object";
}

enum class Op {
  kVeq,
  kVne,
  kVgt,
  kVgte,
  kVlt,
  kVlte,
  kEq,
  kNe,
  kLt,
  kLte,
  kGt,
  kGte,
  kExists,
  kIn,
  kIni,
  kInGroup,
  kNotInGroup,
  kNin,
  kNini,
  kNot,
  kSize,
  kElemMatch,
  kAll,
  kAlli,
  kRegex,
  kRegexi,
  kType,
  kUnknown
};

Op op_code(std::string_view op) {
  static constexpr std::pair<std::string_view, Op> kOps[] = {{"$veq", Op::kVeq},
                                                             {"$vne", Op::kVne},
                                                             {"$vgt", Op::kVgt},
                                                             {"$vgte", Op::kVgte},
                                                             {"$vlt", Op::kVlt},
                                                             {"$vlte", Op::kVlte},
                                                             {"$eq", Op::kEq},
                                                             {"$ne", Op::kNe},
                                                             {"$lt", Op::kLt},
                                                             {"$lte", Op::kLte},
                                                             {"$gt", Op::kGt},
                                                             {"$gte", Op::kGte},
                                                             {"$exists", Op::kExists},
                                                             {"$in", Op::kIn},
                                                             {"$ini", Op::kIni},
                                                             {"$inGroup", Op::kInGroup},
                                                             {"$notInGroup", Op::kNotInGroup},
                                                             {"$nin", Op::kNin},
                                                             {"$nini", Op::kNini},
                                                             {"$not", Op::kNot},
                                                             {"$size", Op::kSize},
                                                             {"$elemMatch", Op::kElemMatch},
                                                             {"$all", Op::kAll},
                                                             {"$alli", Op::kAlli},
                                                             {"$regex", Op::kRegex},
                                                             {"$regexi", Op::kRegexi},
                                                             {"$type", Op::kType}};
  for (const auto& [name, code] : kOps) {
    if (name == op) return code;
  }
  return Op::kUnknown;
}

// libstdc++'s regex matcher recurses per input character, so patterns and the text they
// run over are bounded (validate_condition refuses longer patterns; a longer pattern in a
// stored condition never matches, and neither does a longer subject).
constexpr std::size_t kMaxRegexBytes = 256;
constexpr std::size_t kMaxRegexSubjectBytes = 1024;

// True when a back-reference (\12) or a repetition count ({3,12}) has more than 9 digits.
// libstdc++'s regex compiler accumulates those numbers in a signed long without an overflow
// check (undefined behaviour the condition fuzzer found with "\\4444444444444444444"); no
// real pattern needs such a count, so the pattern is refused before std::regex sees it.
bool has_oversized_regex_count(std::string_view pattern) {
  auto digits_at = [&](std::size_t i) {
    std::size_t n = 0;
    while (i + n < pattern.size() && pattern[i + n] >= '0' && pattern[i + n] <= '9') ++n;
    return n;
  };
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      if (digits_at(i + 1) > 9) return true;
      ++i;  // the escaped character
    } else if (pattern[i] == '{' || pattern[i] == ',') {
      if (digits_at(i + 1) > 9) return true;
    }
  }
  return false;
}

// The one way a condition's pattern becomes a std::regex, for saving and for evaluation
// alike: bounded in length and in its counts, then compiled. InvalidArgument (no field:
// the caller names it) says why a pattern is refused.
Result<std::shared_ptr<const std::regex>> compile_bounded_regex(std::string_view pattern,
                                                                bool ignore_case) {
  if (pattern.size() > kMaxRegexBytes) {
    return invalid_argument("regular expression longer than " + std::to_string(kMaxRegexBytes) +
                            " bytes");
  }
  if (has_oversized_regex_count(pattern)) {
    return invalid_argument(
        "regular expression has a back-reference or repetition count of more than 9 digits");
  }
  auto flags = std::regex::ECMAScript;
  if (ignore_case) flags |= std::regex::icase;
  try {
    return std::make_shared<const std::regex>(pattern.begin(), pattern.end(), flags);
  } catch (const std::regex_error&) {
    return invalid_argument("invalid regular expression");
  }
}

struct ValueMatcher;

struct OpTerm {
  Op op = Op::kUnknown;
  json operand;
  std::string text;                         // padded version operand, saved group id
  std::shared_ptr<const std::regex> regex;  // null when the pattern is invalid
  std::vector<ValueMatcher> values;         // $not/$size/$elemMatch(operators): [0]; $all: each
  std::shared_ptr<const CompiledCondition::Node> condition;  // $elemMatch on objects
};

// A condition value: a literal (equality in the SDK's loose sense) or an operator object.
struct ValueMatcher {
  enum class Kind { kString, kNumber, kBool, kNull, kDeepEqual, kOperators } kind = Kind::kNull;
  json literal;
  std::string text;
  std::string lower_text;
  double number = 0;
  bool boolean = false;
  std::vector<OpTerm> ops;
};

}  // namespace

struct CompiledCondition::Node {
  struct Clause {
    enum class Kind { kOr, kNor, kAnd, kNot, kPath } kind = Kind::kPath;
    std::vector<std::shared_ptr<const Node>> children;  // $or/$nor/$and: each; $not: [0]
    bool children_is_array = true;
    std::vector<std::string> path;
    ValueMatcher value;
  };
  bool is_object = true;  // a non-object condition never matches
  std::vector<Clause> clauses;
};

namespace {

using Node = CompiledCondition::Node;

std::shared_ptr<const Node> compile_node(const json& condition);

ValueMatcher compile_value(const json& condition) {
  ValueMatcher m;
  m.literal = condition;
  if (condition.is_string()) {
    m.kind = ValueMatcher::Kind::kString;
    m.text = condition.get<std::string>();
    m.lower_text = lower(m.text);
  } else if (condition.is_number()) {
    m.kind = ValueMatcher::Kind::kNumber;
    m.number = condition.get<double>();
  } else if (condition.is_boolean()) {
    m.kind = ValueMatcher::Kind::kBool;
    m.boolean = condition.get<bool>();
  } else if (condition.is_null()) {
    m.kind = ValueMatcher::Kind::kNull;
  } else if (condition.is_array() || !is_operator_object(condition)) {
    m.kind = ValueMatcher::Kind::kDeepEqual;
  } else {
    m.kind = ValueMatcher::Kind::kOperators;
    for (auto it = condition.begin(); it != condition.end(); ++it) {
      OpTerm term;
      term.op = op_code(it.key());
      term.operand = it.value();
      const json& operand = it.value();
      switch (term.op) {
        case Op::kVeq:
        case Op::kVne:
        case Op::kVgt:
        case Op::kVgte:
        case Op::kVlt:
        case Op::kVlte:
          term.text = padded_version_string(version_text(operand));
          break;
        case Op::kInGroup:
        case Op::kNotInGroup:
          term.text = operand.is_string() ? operand.get<std::string>() : js::string_of(operand);
          break;
        case Op::kNot:
        case Op::kSize:
          term.values.push_back(compile_value(operand));
          break;
        case Op::kAll:
        case Op::kAlli:
          if (operand.is_array()) {
            for (const auto& e : operand) term.values.push_back(compile_value(e));
          }
          break;
        case Op::kElemMatch:
          if (is_operator_object(operand)) {
            term.values.push_back(compile_value(operand));
          } else {
            term.condition = compile_node(operand);
          }
          break;
        case Op::kRegex:
        case Op::kRegexi: {
          // getRegex escapes unescaped '/' (harmless in ECMAScript syntax). A refused pattern
          // in a stored condition never matches.
          auto compiled = compile_bounded_regex(js::string_of(operand), term.op == Op::kRegexi);
          term.regex = compiled.is_ok() ? std::move(compiled).value() : nullptr;
          break;
        }
        default:
          break;
      }
      m.ops.push_back(std::move(term));
    }
  }
  return m;
}

std::shared_ptr<const Node> compile_node(const json& condition) {
  auto node = std::make_shared<Node>();
  if (!condition.is_object()) {
    node->is_object = false;
    return node;
  }
  for (auto it = condition.begin(); it != condition.end(); ++it) {
    Node::Clause clause;
    const std::string& key = it.key();
    const json& v = it.value();
    using Kind = Node::Clause::Kind;
    if (key == "$or" || key == "$nor" || key == "$and") {
      clause.kind = key == "$or" ? Kind::kOr : key == "$nor" ? Kind::kNor : Kind::kAnd;
      clause.children_is_array = v.is_array();
      if (v.is_array()) {
        for (const auto& c : v) clause.children.push_back(compile_node(c));
      }
    } else if (key == "$not") {
      clause.kind = Kind::kNot;
      clause.children.push_back(compile_node(v));
    } else {
      clause.kind = Kind::kPath;
      std::size_t begin = 0;
      while (true) {
        const auto dot = key.find('.', begin);
        clause.path.push_back(key.substr(begin, dot == std::string::npos ? dot : dot - begin));
        if (dot == std::string::npos) break;
        begin = dot + 1;
      }
      clause.value = compile_value(v);
    }
    node->clauses.push_back(std::move(clause));
  }
  return node;
}

// getPath: dot-path lookup; anything missing is null. Arrays are objects to JavaScript, so
// "tags.0" and "tags.length" resolve too.
const json& get_path(const json& obj, const std::vector<std::string>& path, json& scratch) {
  const json* current = &obj;
  for (const auto& part : path) {
    if (current->is_object()) {
      auto it = current->find(part);
      if (it == current->end()) return null_json();
      current = &*it;
    } else if (current->is_array()) {
      if (part == "length") {
        scratch = current->size();
        current = &scratch;
        continue;
      }
      std::size_t index = 0;
      auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), index);
      if (part.empty() || ec != std::errc() || p != part.data() + part.size() ||
          index >= current->size() || (part.size() > 1 && part[0] == '0')) {
        return null_json();
      }
      current = &(*current)[index];
    } else {
      return null_json();
    }
  }
  return *current;
}

// paddedVersionString(actual) compared with a padded operand, without allocating for strings.
int version_compare(const json& actual, const std::string& padded) {
  if (actual.is_string() && !actual.get_ref<const std::string&>().empty()) {
    return compare_with_padded(actual.get_ref<const std::string&>(), padded);
  }
  return compare_with_padded(version_text(actual), padded);
}

struct Evaluator {
  const json* saved_groups;

  bool node(const Node& n, const json& attributes) const {
    if (!n.is_object) return false;
    using Kind = Node::Clause::Kind;
    for (const auto& clause : n.clauses) {
      switch (clause.kind) {
        case Kind::kOr:
          if (!any(clause, attributes)) return false;
          break;
        case Kind::kNor:
          if (any(clause, attributes)) return false;
          break;
        case Kind::kAnd:
          for (const auto& c : clause.children) {
            if (!node(*c, attributes)) return false;
          }
          break;
        case Kind::kNot:
          if (node(*clause.children[0], attributes)) return false;
          break;
        case Kind::kPath: {
          json scratch;
          if (!value(clause.value, get_path(attributes, clause.path, scratch))) return false;
          break;
        }
      }
    }
    return true;
  }

  // evalOr: an empty (or non-array) list passes.
  bool any(const Node::Clause& clause, const json& attributes) const {
    if (!clause.children_is_array || clause.children.empty()) return true;
    for (const auto& c : clause.children) {
      if (node(*c, attributes)) return true;
    }
    return false;
  }

  bool value(const ValueMatcher& m, const json& actual, bool insensitive = false) const {
    using Kind = ValueMatcher::Kind;
    switch (m.kind) {
      case Kind::kString:
        if (insensitive) return lower(js::string_of(actual)) == m.lower_text;
        if (actual.is_string()) return actual.get_ref<const std::string&>() == m.text;
        return js::string_of(actual) == m.text;
      case Kind::kNumber:
        return js::number_of(actual) == m.number;
      case Kind::kBool:
        return !actual.is_null() && js::truthy(actual) == m.boolean;
      case Kind::kNull:
        return actual.is_null();
      case Kind::kDeepEqual:
        return actual == m.literal;
      case Kind::kOperators:
        for (const auto& term : m.ops) {
          if (!op(term, actual)) return false;
        }
        return true;
    }
    return false;
  }

  const json& group(const std::string& id) const {
    if (saved_groups == nullptr || !saved_groups->is_object()) return null_json();
    auto it = saved_groups->find(id);
    return it == saved_groups->end() ? null_json() : *it;
  }

  bool all(const OpTerm& term, const json& actual, bool insensitive) const {
    if (!term.operand.is_array() || !actual.is_array()) return false;
    for (const auto& expected : term.values) {
      bool passed = false;
      for (const auto& a : actual) {
        if (value(expected, a, insensitive)) {
          passed = true;
          break;
        }
      }
      if (!passed) return false;
    }
    return true;
  }

  bool elem_match(const OpTerm& term, const json& actual) const {
    if (!actual.is_array()) return false;
    for (const auto& item : actual) {
      if (!js::truthy(item)) continue;  // the SDK skips falsy elements
      if (term.condition ? node(*term.condition, item) : value(term.values[0], item)) return true;
    }
    return false;
  }

  bool op(const OpTerm& term, const json& actual) const {
    const json& expected = term.operand;
    switch (term.op) {
      case Op::kVeq:
        return version_compare(actual, term.text) == 0;
      case Op::kVne:
        return version_compare(actual, term.text) != 0;
      case Op::kVgt:
        return version_compare(actual, term.text) > 0;
      case Op::kVgte:
        return version_compare(actual, term.text) >= 0;
      case Op::kVlt:
        return version_compare(actual, term.text) < 0;
      case Op::kVlte:
        return version_compare(actual, term.text) <= 0;
      case Op::kEq:
        return js::strict_equal(actual, expected);
      case Op::kNe:
        return !js::strict_equal(actual, expected);
      case Op::kLt:
        return js_compare(actual, expected, Rel::kLess);
      case Op::kLte:
        return js_compare(actual, expected, Rel::kLessEqual);
      case Op::kGt:
        return js_compare(actual, expected, Rel::kGreater);
      case Op::kGte:
        return js_compare(actual, expected, Rel::kGreaterEqual);
      case Op::kExists:
        return js::truthy(expected) ? !actual.is_null() : actual.is_null();
      case Op::kIn:
        return expected.is_array() && is_in(actual, expected, false);
      case Op::kIni:
        return expected.is_array() && is_in(actual, expected, true);
      case Op::kNin:
        return expected.is_array() && !is_in(actual, expected, false);
      case Op::kNini:
        return expected.is_array() && !is_in(actual, expected, true);
      case Op::kInGroup:
        return is_in(actual, group(term.text), false);
      case Op::kNotInGroup:
        return !is_in(actual, group(term.text), false);
      case Op::kNot:
        return !value(term.values[0], actual);
      case Op::kSize:
        return actual.is_array() && value(term.values[0], json(actual.size()));
      case Op::kElemMatch:
        return elem_match(term, actual);
      case Op::kAll:
        return all(term, actual, false);
      case Op::kAlli:
        return all(term, actual, true);
      case Op::kRegex:
      case Op::kRegexi:
        if (term.regex == nullptr) return false;
        {
          const std::string subject = js::string_of(actual);
          return subject.size() <= kMaxRegexSubjectBytes && std::regex_search(subject, *term.regex);
        }
      case Op::kType:
        return expected.is_string() && expected.get_ref<const std::string&>() == type_name(actual);
      case Op::kUnknown:
        return false;  // the SDK fails the match on unknown operators
    }
    return false;
  }
};

// ---- validation -------------------------------------------------------------------------

bool known_value_operator(std::string_view op) {
  static constexpr std::string_view kOps[] = {
      "$veq",  "$vne",   "$vgt",    "$vgte", "$vlt",     "$vlte",      "$eq",
      "$ne",   "$lt",    "$lte",    "$gt",   "$gte",     "$exists",    "$in",
      "$ini",  "$nin",   "$nini",   "$not",  "$size",    "$elemMatch", "$all",
      "$alli", "$regex", "$regexi", "$type", "$inGroup", "$notInGroup"};
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
  if ((op == "$inGroup" || op == "$notInGroup") && !operand.is_string()) {
    return invalid_argument(std::string(op) + " needs a saved group id", field);
  }
  if (op.starts_with("$v") && !operand.is_string() && !operand.is_number()) {
    return invalid_argument(std::string(op) + " needs a version string like \"5.2.0\"", field);
  }
  if (op == "$regex" || op == "$regexi") {
    if (!operand.is_string()) return invalid_argument("$regex needs a string", field);
    auto compiled =
        compile_bounded_regex(operand.get_ref<const std::string&>(), op == "$regexi");
    if (!compiled.is_ok()) return invalid_argument(compiled.status().message(), field);
  }
  if (op == "$type") {
    static constexpr std::string_view kTypes[] = {"null",    "array",  "string",   "number",
                                                  "boolean", "object", "undefined"};
    bool ok = false;
    for (auto t : kTypes) ok = ok || (operand.is_string() && operand.get<std::string>() == t);
    if (!ok)
      return invalid_argument(
          "$type must be one of null, array, string, number, boolean, object, undefined", field);
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
        FULCRUM_RETURN_IF_ERROR(validate_condition_at(
            it.value()[i], path + "[" + std::to_string(i) + "]", depth + 1));
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

CompiledCondition::CompiledCondition() : root_(std::make_shared<const Node>()) {}

CompiledCondition CompiledCondition::compile(const json& condition) {
  CompiledCondition c;
  // Compiling (and later matching) recurses along the document, and copies of its values
  // recurse too: a document deeper than any parse of untrusted input allows (a hand-built
  // or damaged one) compiles to "never matches" instead. The check itself is iterative.
  if (json_depth_exceeds(condition, JsonLimits::kDefaultMaxDepth)) {
    auto never = std::make_shared<Node>();
    never->is_object = false;
    c.root_ = std::move(never);
    return c;
  }
  c.root_ = compile_node(condition);
  return c;
}

bool CompiledCondition::matches(const json& attributes, const json* saved_groups) const {
  return Evaluator{saved_groups}.node(*root_, attributes);
}

bool CompiledCondition::matches_everything() const {
  return root_->is_object && root_->clauses.empty();
}

bool eval_condition(const json& attributes, const json& condition, const json* saved_groups) {
  return CompiledCondition::compile(condition).matches(attributes, saved_groups);
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
