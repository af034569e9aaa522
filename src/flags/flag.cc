#include "flags/flag.h"

#include <cmath>
#include <set>

#include "assign/condition.h"
#include "core/ids.h"

namespace fulcrum::flags {
namespace {

using json = nlohmann::json;

const std::set<std::string> kFlagFields = {"key",   "value_type", "default_value", "description",
                                           "tags",  "rules",      "killed",        "archived"};
const std::set<std::string> kReadOnlyFields = {"version", "created_at", "updated_at",
                                               "updated_by"};
const std::set<std::string> kForceFields = {
    "id",    "type",     "description",    "enabled", "condition",
    "value", "coverage", "hash_attribute", "seed",    "holdout_id"};
const std::set<std::string> kExperimentFields = {
    "id",         "type",      "description", "enabled",      "condition",      "key",
    "variations", "weights",   "coverage",    "hash_version", "hash_attribute", "seed",
    "namespace",  "holdout_id"};

Status reject_unknown(const json& object, const std::set<std::string>& known,
                      const std::string& prefix) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (!known.count(it.key())) {
      return invalid_argument("unknown field '" + it.key() + "'", prefix + it.key());
    }
  }
  return Status::ok();
}

const json* find(const json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

Status read_string(const json& object, const char* name, const std::string& field,
                   std::string& out, std::size_t max_length = 2000) {
  const json* value = find(object, name);
  if (!value) return Status::ok();
  if (!value->is_string()) return invalid_argument("must be a string", field);
  out = value->get<std::string>();
  if (out.size() > max_length) {
    return invalid_argument("is longer than " + std::to_string(max_length) + " characters", field);
  }
  return Status::ok();
}

Status read_bool(const json& object, const char* name, const std::string& field, bool& out) {
  const json* value = find(object, name);
  if (!value) return Status::ok();
  if (!value->is_boolean()) return invalid_argument("must be true or false", field);
  out = value->get<bool>();
  return Status::ok();
}

Status read_unit(const json& object, const char* name, const std::string& field,
                 std::optional<double>& out, bool allow_zero) {
  const json* value = find(object, name);
  if (!value) return Status::ok();
  if (!value->is_number()) return invalid_argument("must be a number", field);
  const double number = value->get<double>();
  if (!std::isfinite(number) || number < 0 || number > 1 || (!allow_zero && number == 0)) {
    return invalid_argument(allow_zero ? "must be between 0 and 1" : "must be in (0, 1]", field);
  }
  out = number;
  return Status::ok();
}

Status check_value(ValueType type, const json& value, const std::string& field) {
  if (!value_matches(type, value)) {
    return invalid_argument(std::string("must be a ") + value_type_name(type) +
                                (type == ValueType::kJson ? " (object or array)" : "") +
                                " value, as the flag's value_type says",
                            field);
  }
  return Status::ok();
}

Result<assign::Namespace> parse_namespace(const json& value, const std::string& field) {
  if (!value.is_object()) return invalid_argument("must be {\"id\", \"start\", \"end\"}", field);
  FULCRUM_RETURN_IF_ERROR(reject_unknown(value, {"id", "start", "end"}, field + "."));
  assign::Namespace ns;
  const json* id = find(value, "id");
  if (!id || !id->is_string() || id->get<std::string>().empty()) {
    return invalid_argument("must be a non-empty string", field + ".id");
  }
  ns.id = id->get<std::string>();
  const json* start = find(value, "start");
  const json* end = find(value, "end");
  if (!start || !start->is_number()) return invalid_argument("must be a number", field + ".start");
  if (!end || !end->is_number()) return invalid_argument("must be a number", field + ".end");
  ns.start = start->get<double>();
  ns.end = end->get<double>();
  if (!(ns.start >= 0 && ns.start < 1)) return invalid_argument("must be in [0, 1)", field + ".start");
  if (!(ns.end > ns.start && ns.end <= 1)) {
    return invalid_argument("must be in (start, 1]", field + ".end");
  }
  return ns;
}

Result<Rule> parse_rule(const json& value, ValueType type, const std::string& field) {
  if (!value.is_object()) return invalid_argument("must be an object", field);
  Rule rule;
  const json* kind = find(value, "type");
  if (!kind || !kind->is_string()) {
    return invalid_argument("is required: \"force\" or \"experiment\"", field + ".type");
  }
  const std::string kind_name = kind->get<std::string>();
  if (kind_name == "force") {
    rule.kind = Rule::Kind::kForce;
  } else if (kind_name == "experiment") {
    rule.kind = Rule::Kind::kExperiment;
  } else {
    return invalid_argument("must be \"force\" or \"experiment\"", field + ".type");
  }
  FULCRUM_RETURN_IF_ERROR(reject_unknown(
      value, rule.kind == Rule::Kind::kForce ? kForceFields : kExperimentFields, field + "."));
  FULCRUM_RETURN_IF_ERROR(read_string(value, "id", field + ".id", rule.id, 100));
  if (find(value, "id") && !is_valid_flag_key(rule.id)) {
    return invalid_argument("must be 1..100 characters of [A-Za-z0-9_.:-]", field + ".id");
  }
  FULCRUM_RETURN_IF_ERROR(read_string(value, "description", field + ".description",
                                      rule.description));
  FULCRUM_RETURN_IF_ERROR(read_bool(value, "enabled", field + ".enabled", rule.enabled));
  if (const json* condition = find(value, "condition")) {
    FULCRUM_RETURN_IF_ERROR(assign::validate_condition(*condition, field + ".condition"));
    rule.condition = *condition;
  }
  FULCRUM_RETURN_IF_ERROR(
      read_string(value, "hash_attribute", field + ".hash_attribute", rule.hash_attribute, 100));
  if (rule.hash_attribute.empty()) {
    return invalid_argument("must not be empty", field + ".hash_attribute");
  }
  FULCRUM_RETURN_IF_ERROR(read_string(value, "seed", field + ".seed", rule.seed, 200));
  FULCRUM_RETURN_IF_ERROR(
      read_string(value, "holdout_id", field + ".holdout_id", rule.holdout_id, 128));

  if (rule.kind == Rule::Kind::kForce) {
    const json* forced = find(value, "value");
    if (!forced) return invalid_argument("is required", field + ".value");
    FULCRUM_RETURN_IF_ERROR(check_value(type, *forced, field + ".value"));
    rule.value = *forced;
    FULCRUM_RETURN_IF_ERROR(read_unit(value, "coverage", field + ".coverage", rule.coverage,
                                      /*allow_zero=*/true));
    return rule;
  }

  FULCRUM_RETURN_IF_ERROR(read_string(value, "key", field + ".key", rule.experiment_key, 128));
  if (find(value, "key") && !is_valid_external_id(rule.experiment_key)) {
    return invalid_argument("must be 1..128 characters of [A-Za-z0-9_.:@-]", field + ".key");
  }
  const json* variations = find(value, "variations");
  if (!variations || !variations->is_array() || variations->size() < 2) {
    return invalid_argument("needs at least two variations", field + ".variations");
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < variations->size(); ++i) {
    const json& item = (*variations)[i];
    const std::string item_field = field + ".variations[" + std::to_string(i) + "]";
    if (!item.is_object()) return invalid_argument("must be {\"name\", \"value\"}", item_field);
    FULCRUM_RETURN_IF_ERROR(reject_unknown(item, {"name", "value"}, item_field + "."));
    Variation variation;
    const json* name = find(item, "name");
    if (!name || !name->is_string() || name->get<std::string>().empty()) {
      return invalid_argument("must be a non-empty string", item_field + ".name");
    }
    variation.name = name->get<std::string>();
    if (!names.insert(variation.name).second) {
      return invalid_argument("duplicate variation name", item_field + ".name");
    }
    const json* item_value = find(item, "value");
    if (!item_value) return invalid_argument("is required", item_field + ".value");
    FULCRUM_RETURN_IF_ERROR(check_value(type, *item_value, item_field + ".value"));
    variation.value = *item_value;
    rule.variations.push_back(std::move(variation));
  }
  if (const json* weights = find(value, "weights")) {
    if (!weights->is_array() || weights->size() != rule.variations.size()) {
      return invalid_argument("must be an array with one weight per variation (" +
                                  std::to_string(rule.variations.size()) + ")",
                              field + ".weights");
    }
    double total = 0;
    for (std::size_t i = 0; i < weights->size(); ++i) {
      const json& w = (*weights)[i];
      if (!w.is_number() || !std::isfinite(w.get<double>()) || w.get<double>() < 0 ||
          w.get<double>() > 1) {
        return invalid_argument("must be a number between 0 and 1",
                                field + ".weights[" + std::to_string(i) + "]");
      }
      rule.weights.push_back(w.get<double>());
      total += w.get<double>();
    }
    if (std::fabs(total - 1.0) > 1e-6) {
      return invalid_argument("must sum to 1 (they sum to " + std::to_string(total) + ")",
                              field + ".weights");
    }
  } else {
    rule.weights = assign::get_equal_weights(static_cast<int>(rule.variations.size()));
  }
  FULCRUM_RETURN_IF_ERROR(read_unit(value, "coverage", field + ".coverage", rule.coverage,
                                    /*allow_zero=*/false));
  if (const json* version = find(value, "hash_version")) {
    if (!version->is_number_integer() ||
        (version->get<std::int64_t>() != 1 && version->get<std::int64_t>() != 2)) {
      return invalid_argument("must be 1 or 2", field + ".hash_version");
    }
    rule.hash_version = version->get<int>();
  }
  if (const json* ns = find(value, "namespace")) {
    auto parsed = parse_namespace(*ns, field + ".namespace");
    if (!parsed) return parsed.status();
    rule.ns = std::move(*parsed);
  }
  return rule;
}

json rule_to_json(const Rule& rule) {
  json out = {{"id", rule.id},
              {"type", rule.kind == Rule::Kind::kForce ? "force" : "experiment"},
              {"enabled", rule.enabled},
              {"condition", rule.condition},
              {"hash_attribute", rule.hash_attribute}};
  if (!rule.description.empty()) out["description"] = rule.description;
  if (!rule.seed.empty()) out["seed"] = rule.seed;
  if (rule.coverage) out["coverage"] = *rule.coverage;
  if (!rule.holdout_id.empty()) out["holdout_id"] = rule.holdout_id;
  if (rule.kind == Rule::Kind::kForce) {
    out["value"] = rule.value;
    return out;
  }
  if (!rule.experiment_key.empty()) out["key"] = rule.experiment_key;
  json variations = json::array();
  for (const Variation& v : rule.variations) {
    variations.push_back({{"name", v.name}, {"value", v.value}});
  }
  out["variations"] = variations;
  out["weights"] = rule.weights;
  out["hash_version"] = rule.hash_version;
  if (rule.ns) out["namespace"] = {{"id", rule.ns->id}, {"start", rule.ns->start}, {"end", rule.ns->end}};
  return out;
}

}  // namespace

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kBoolean:
      return "boolean";
    case ValueType::kString:
      return "string";
    case ValueType::kNumber:
      return "number";
    case ValueType::kJson:
      return "json";
  }
  return "boolean";
}

std::optional<ValueType> parse_value_type(std::string_view name) {
  if (name == "boolean") return ValueType::kBoolean;
  if (name == "string") return ValueType::kString;
  if (name == "number") return ValueType::kNumber;
  if (name == "json") return ValueType::kJson;
  return std::nullopt;
}

bool value_matches(ValueType type, const json& value) {
  switch (type) {
    case ValueType::kBoolean:
      return value.is_boolean();
    case ValueType::kString:
      return value.is_string();
    case ValueType::kNumber:
      return value.is_number() && std::isfinite(value.get<double>());
    case ValueType::kJson:
      return value.is_object() || value.is_array();
  }
  return false;
}

json Flag::off_value() const { return type == ValueType::kBoolean ? json(false) : default_value; }

bool is_valid_flag_key(std::string_view key) {
  if (key.empty() || key.size() > 100) return false;
  if (!std::isalnum(static_cast<unsigned char>(key.front()))) return false;
  for (char c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' &&
        c != ':') {
      return false;
    }
  }
  return true;
}

Result<Flag> parse_flag(const json& request) {
  if (!request.is_object()) return invalid_argument("request body must be a JSON object");
  for (auto it = request.begin(); it != request.end(); ++it) {
    if (kReadOnlyFields.count(it.key())) {
      return invalid_argument("is read-only (set by the server)", it.key());
    }
  }
  FULCRUM_RETURN_IF_ERROR(reject_unknown(request, kFlagFields, ""));
  Flag flag;
  const json* key = find(request, "key");
  if (!key || !key->is_string()) return invalid_argument("is required", "key");
  flag.key = key->get<std::string>();
  if (!is_valid_flag_key(flag.key)) {
    return invalid_argument(
        "must be 1..100 characters of [A-Za-z0-9_.:-] starting with a letter or digit", "key");
  }
  const json* type = find(request, "value_type");
  if (!type || !type->is_string() || !parse_value_type(type->get<std::string>())) {
    return invalid_argument("must be \"boolean\", \"string\", \"number\" or \"json\"",
                            "value_type");
  }
  flag.type = *parse_value_type(type->get<std::string>());
  const json* default_value = find(request, "default_value");
  if (!default_value) return invalid_argument("is required", "default_value");
  FULCRUM_RETURN_IF_ERROR(check_value(flag.type, *default_value, "default_value"));
  flag.default_value = *default_value;
  FULCRUM_RETURN_IF_ERROR(read_string(request, "description", "description", flag.description));
  if (const json* tags = find(request, "tags")) {
    if (!tags->is_array()) return invalid_argument("must be an array of strings", "tags");
    for (std::size_t i = 0; i < tags->size(); ++i) {
      if (!(*tags)[i].is_string() || (*tags)[i].get<std::string>().size() > 100) {
        return invalid_argument("must be a string of at most 100 characters",
                                "tags[" + std::to_string(i) + "]");
      }
      flag.tags.push_back((*tags)[i].get<std::string>());
    }
  }
  FULCRUM_RETURN_IF_ERROR(read_bool(request, "killed", "killed", flag.killed));
  FULCRUM_RETURN_IF_ERROR(read_bool(request, "archived", "archived", flag.archived));
  if (const json* rules = find(request, "rules")) {
    if (!rules->is_array()) return invalid_argument("must be an array", "rules");
    if (rules->size() > 200) return invalid_argument("at most 200 rules per flag", "rules");
    std::set<std::string> ids;
    for (std::size_t i = 0; i < rules->size(); ++i) {
      const std::string field = "rules[" + std::to_string(i) + "]";
      auto rule = parse_rule((*rules)[i], flag.type, field);
      if (!rule) return rule.status();
      if (rule->id.empty()) rule->id = new_id("rule");
      if (!ids.insert(rule->id).second) return invalid_argument("duplicate rule id", field + ".id");
      flag.rules.push_back(std::move(*rule));
    }
  }
  return flag;
}

json to_json(const Flag& flag) {
  json rules = json::array();
  for (const Rule& rule : flag.rules) rules.push_back(rule_to_json(rule));
  return {{"key", flag.key},
          {"value_type", value_type_name(flag.type)},
          {"default_value", flag.default_value},
          {"description", flag.description},
          {"tags", flag.tags},
          {"rules", rules},
          {"killed", flag.killed},
          {"archived", flag.archived},
          {"version", flag.version},
          {"created_at", format_iso8601(flag.created_at)},
          {"updated_at", format_iso8601(flag.updated_at)},
          {"updated_by", flag.updated_by}};
}

Result<Flag> flag_from_json(const json& body) {
  if (!body.is_object()) return internal_error("stored flag is not a JSON object");
  json editable = json::object();
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!kReadOnlyFields.count(it.key())) editable[it.key()] = it.value();
  }
  auto flag = parse_flag(editable);
  if (!flag) return flag.status();
  if (auto at = body.find("created_at"); at != body.end() && at->is_string()) {
    flag->created_at = parse_iso8601(at->get<std::string>()).value_or(0);
  }
  if (auto at = body.find("updated_at"); at != body.end() && at->is_string()) {
    flag->updated_at = parse_iso8601(at->get<std::string>()).value_or(0);
  }
  if (auto by = body.find("updated_by"); by != body.end() && by->is_string()) {
    flag->updated_by = by->get<std::string>();
  }
  return flag;
}

}  // namespace fulcrum::flags
