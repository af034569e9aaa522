#include "store/event_codec.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "core/limits.h"
#include "core/money.h"
#include "core/untrusted_json.h"
#include "core/time.h"
#include "store/store.h"

namespace fulcrum {
namespace {

// Every field name any record type may carry. A record is first collected into a
// RawRecord (one slot per field) whatever its format, then validated per type, so NDJSON
// and CSV share one set of rules and error messages.
enum Field : std::uint8_t {
  kType,
  kUserId,
  kTier,
  kSignupAt,
  kCountry,
  kAppVersion,
  kName,
  kRequiredTier,
  kMaintenanceCost,
  kMaintenanceCostMinor,
  kRevenueValue,
  kRevenueValueMinor,
  kCategory,
  kFeature,
  kAt,
  kCount,
  kDurationSeconds,
  kKind,
  kFromTier,
  kToTier,
  kSucceeded,
  kAmount,
  kAmountMinor,
  kExperimentId,
  kVariant,
  kMetric,
  kValue,
  kEventId,
  kFieldCount
};

constexpr std::array<const char*, kFieldCount> kFieldNames = {
    "type",
    "user_id",
    "tier",
    "signup_at",
    "country",
    "app_version",
    "name",
    "required_tier",
    "monthly_maintenance_cost",
    "monthly_maintenance_cost_minor",
    "monthly_revenue_value",
    "monthly_revenue_value_minor",
    "category",
    "feature",
    "at",
    "count",
    "duration_seconds",
    "kind",
    "from_tier",
    "to_tier",
    "succeeded",
    "amount",
    "amount_minor",
    "experiment_id",
    "variant",
    "metric",
    "value",
    "event_id",
};

constexpr std::string_view kAttributesPrefix = "attributes.";
constexpr std::size_t kMaxIdLength = limits::kMaxIdBytes;
constexpr std::size_t kMaxAttributeValueBytes = 1024;
constexpr std::size_t kMaxRecordBytes = 64u << 20;  // a longer line is not an event record

std::optional<Field> lookup_field(std::string_view name) {
  static const auto* const kIndex = [] {
    auto* index = new std::unordered_map<std::string_view, Field>();
    for (std::size_t i = 0; i < kFieldCount; ++i) index->emplace(kFieldNames[i], Field(i));
    return index;
  }();
  auto it = kIndex->find(name);
  if (it == kIndex->end()) return std::nullopt;
  return it->second;
}

enum class RecordType : std::uint8_t {
  kUser,
  kFeature,
  kFeatureUsage,
  kSession,
  kSubscriptionChange,
  kPayment,
  kPaywallHit,
  kExposure,
  kMetric,
};

std::optional<RecordType> lookup_type(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, RecordType>, 9> kTypes = {{
      {"user", RecordType::kUser},
      {"feature", RecordType::kFeature},
      {"feature_usage", RecordType::kFeatureUsage},
      {"session", RecordType::kSession},
      {"subscription_change", RecordType::kSubscriptionChange},
      {"payment", RecordType::kPayment},
      {"paywall_hit", RecordType::kPaywallHit},
      {"exposure", RecordType::kExposure},
      {"metric", RecordType::kMetric},
  }};
  for (const auto& [type_name, type] : kTypes) {
    if (type_name == name) return type;
  }
  return std::nullopt;
}

constexpr std::uint32_t bit(Field field) { return 1u << field; }

// Which fields each type accepts ("type" always).
std::uint32_t allowed_fields(RecordType type) {
  switch (type) {
    case RecordType::kUser:
      return bit(kUserId) | bit(kTier) | bit(kSignupAt) | bit(kCountry) | bit(kAppVersion);
    case RecordType::kFeature:
      return bit(kName) | bit(kRequiredTier) | bit(kMaintenanceCost) | bit(kMaintenanceCostMinor) |
             bit(kRevenueValue) | bit(kRevenueValueMinor) | bit(kCategory);
    case RecordType::kFeatureUsage:
      return bit(kUserId) | bit(kFeature) | bit(kAt) | bit(kCount);
    case RecordType::kSession:
      return bit(kUserId) | bit(kAt) | bit(kDurationSeconds);
    case RecordType::kSubscriptionChange:
      return bit(kUserId) | bit(kAt) | bit(kKind) | bit(kFromTier) | bit(kToTier);
    case RecordType::kPayment:
      return bit(kUserId) | bit(kAt) | bit(kSucceeded) | bit(kAmount) | bit(kAmountMinor);
    case RecordType::kPaywallHit:
      return bit(kUserId) | bit(kFeature) | bit(kAt);
    case RecordType::kExposure:
      return bit(kExperimentId) | bit(kUserId) | bit(kVariant) | bit(kAt);
    case RecordType::kMetric:
      return bit(kUserId) | bit(kMetric) | bit(kValue) | bit(kAt);
  }
  return 0;
}

enum class Kind : std::uint8_t { kAbsent, kString, kNumber, kBool };

struct Value {
  Kind kind = Kind::kAbsent;
  std::string_view text;  // string contents or the number's JSON token
  bool boolean = false;
};

// One record before validation. Views point into the reader's buffers and live until the
// next record is collected.
struct RawRecord {
  std::array<Value, kFieldCount> values;
  std::vector<std::pair<std::string_view, Value>> attributes;
  std::int64_t line = 0;
  // The first error met while collecting (syntax, duplicate or unknown field).
  bool failed = false;
  std::string error_field, error_reason;

  void reset(std::int64_t at_line) {
    values.fill(Value{});
    attributes.clear();
    line = at_line;
    failed = false;
    error_field.clear();
    error_reason.clear();
  }
  void fail(std::string_view field, std::string reason) {
    if (failed) return;
    failed = true;
    error_field = field;
    error_reason = std::move(reason);
  }
  void set(std::string_view name, Value value) {
    if (name.starts_with(kAttributesPrefix)) {
      set_attribute(name.substr(kAttributesPrefix.size()), value);
      return;
    }
    auto field = lookup_field(name);
    if (!field) {
      fail(name, "unknown field");
      return;
    }
    if (values[*field].kind != Kind::kAbsent) {
      fail(name, "duplicate field");
      return;
    }
    values[*field] = value;
  }
  void set_attribute(std::string_view key, Value value) {
    if (key.empty()) {
      fail("attributes", "empty attribute name");
      return;
    }
    if (key.size() > limits::kMaxIdBytes) {
      fail("attributes", "attribute name longer than " + std::to_string(limits::kMaxIdBytes) +
                             " bytes");
      return;
    }
    if (value.text.size() > kMaxAttributeValueBytes) {
      fail(std::string(kAttributesPrefix) + std::string(key),
           "longer than " + std::to_string(kMaxAttributeValueBytes) + " bytes");
      return;
    }
    if (attributes.size() >= limits::kMaxAttributes) {
      fail("attributes", "more than " + std::to_string(limits::kMaxAttributes) + " attributes");
      return;
    }
    for (const auto& [existing, unused] : attributes) {
      if (existing == key) {
        fail(std::string(kAttributesPrefix) + std::string(key), "duplicate attribute");
        return;
      }
    }
    attributes.emplace_back(key, value);
  }
};

std::string shown(std::string_view text) {
  constexpr std::size_t kShown = 40;
  std::string out = "'";
  out.append(text.substr(0, kShown));
  if (text.size() > kShown) out += "...";
  out += "'";
  return out;
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return out;
}

// Validates a RawRecord of known type and appends the typed record to the batch. Each
// getter records the first error in `error_*` and returns nullopt/false.
class RecordBuilder {
 public:
  RecordBuilder(const RawRecord& raw, EventBatch& batch, const DecodeOptions& options)
      : raw_(raw), batch_(batch), options_(options) {}

  // Returns true when the record was appended; otherwise error_field/error_reason are set.
  bool build() {
    const Value& type_value = raw_.values[kType];
    if (type_value.kind == Kind::kAbsent) return fail(kType, "is required");
    if (type_value.kind != Kind::kString) return fail(kType, "must be a string");
    auto type = lookup_type(type_value.text);
    if (!type) {
      return fail(kType, "unknown record type " + shown(type_value.text) +
                             " (expected user, feature, feature_usage, session, "
                             "subscription_change, payment, paywall_hit, exposure or metric)");
    }
    const std::uint32_t allowed = allowed_fields(*type) | bit(kType) | bit(kEventId);
    for (std::size_t f = 0; f < kFieldCount; ++f) {
      if (raw_.values[f].kind != Kind::kAbsent && !(allowed & (1u << f))) {
        return fail(Field(f),
                    std::string("is not a field of a ") + std::string(type_value.text) + " record");
      }
    }
    if (*type != RecordType::kUser && !raw_.attributes.empty()) {
      error_field = "attributes." + std::string(raw_.attributes.front().first);
      error_reason = "attributes belong to user records only";
      return false;
    }
    if (!get_event_id()) return false;
    switch (*type) {
      case RecordType::kUser:
        return build_user();
      case RecordType::kFeature:
        return build_feature();
      case RecordType::kFeatureUsage:
        return build_feature_usage();
      case RecordType::kSession:
        return build_session();
      case RecordType::kSubscriptionChange:
        return build_subscription_change();
      case RecordType::kPayment:
        return build_payment();
      case RecordType::kPaywallHit:
        return build_paywall_hit();
      case RecordType::kExposure:
        return build_exposure();
      case RecordType::kMetric:
        return build_metric();
    }
    return false;
  }

  std::string error_field, error_reason;

 private:
  bool fail(Field field, std::string reason) {
    error_field = kFieldNames[field];
    error_reason = std::move(reason);
    return false;
  }
  bool present(Field field) const { return raw_.values[field].kind != Kind::kAbsent; }

  // Identifiers and names: strings (numbers accepted as their text), non-empty, bounded.
  bool get_id(Field field, std::string& out, bool required = true) {
    const Value& v = raw_.values[field];
    if (v.kind == Kind::kAbsent) return !required || fail(field, "is required");
    if (v.kind == Kind::kBool) return fail(field, "must be a string");
    if (v.text.empty()) return !required || fail(field, "must not be empty");
    if (v.text.size() > kMaxIdLength) {
      return fail(field, "is longer than " + std::to_string(kMaxIdLength) + " characters");
    }
    out.assign(v.text);
    return true;
  }

  // An event_id is a caller's own identity for the record: a string (numbers are not
  // accepted, so 1 and "1" cannot both be meant), non-empty, at most 256 bytes.
  bool get_event_id() {
    event_id_.clear();
    const Value& v = raw_.values[kEventId];
    if (v.kind == Kind::kAbsent) return true;
    if (v.kind != Kind::kString) return fail(kEventId, "must be a string");
    if (v.text.empty()) return fail(kEventId, "must not be empty");
    if (v.text.size() > kMaxIdLength) {
      return fail(kEventId, "is longer than " + std::to_string(kMaxIdLength) + " bytes");
    }
    event_id_.assign(v.text);
    return true;
  }

  bool get_time(Field field, UnixSeconds& out, bool required = true) {
    const Value& v = raw_.values[field];
    if (v.kind == Kind::kAbsent) return !required || fail(field, "is required");
    if (v.kind == Kind::kBool) return fail(field, "must be an ISO-8601 time or Unix seconds");
    std::optional<UnixSeconds> parsed = parse_int(v.text);
    if (!parsed && v.kind == Kind::kString) parsed = parse_iso8601(v.text);
    if (!parsed) {
      return fail(field, "not an ISO-8601 UTC time or integer Unix seconds: " + shown(v.text));
    }
    if (options_.earliest_time && *parsed < *options_.earliest_time) {
      return fail(field, "is before " + format_iso8601(*options_.earliest_time) + ", got " +
                             shown(v.text));
    }
    if (options_.latest_time && *parsed > *options_.latest_time) {
      return fail(field, "is after " + format_iso8601(*options_.latest_time) +
                             " (more than a day in the future), got " + shown(v.text));
    }
    out = *parsed;
    return true;
  }

  template <typename Int>
  bool get_int(Field field, Int& out, std::int64_t min, std::int64_t max) {
    const Value& v = raw_.values[field];
    if (v.kind == Kind::kAbsent) return true;  // keep the default
    auto parsed = v.kind == Kind::kBool ? std::nullopt : parse_int(v.text);
    if (!parsed) return fail(field, "must be an integer, got " + shown(v.text));
    if (*parsed < min || *parsed > max) {
      return fail(field, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                             ", got " + std::to_string(*parsed));
    }
    out = static_cast<Int>(*parsed);
    return true;
  }

  // Money: either `major` (decimal major units, at most two decimals) or `minor` (integer).
  bool get_money(Field major, Field minor, std::int64_t& out, bool required) {
    if (present(major) && present(minor)) {
      return fail(minor, std::string("give either ") + kFieldNames[major] + " or " +
                             kFieldNames[minor] + ", not both");
    }
    if (present(minor)) {
      const Value& v = raw_.values[minor];
      auto parsed = v.kind == Kind::kBool ? std::nullopt : parse_int(v.text);
      if (!parsed) return fail(minor, "must be an integer amount of minor units");
      if (*parsed < 0) return fail(minor, "must not be negative");
      out = *parsed;
      return true;
    }
    if (present(major)) {
      const Value& v = raw_.values[major];
      auto parsed = v.kind == Kind::kBool ? std::nullopt : parse_money(v.text);
      if (!parsed) {
        return fail(major,
                    "must be a decimal amount with at most two decimals, got " + shown(v.text));
      }
      if (parsed->minor_units < 0) return fail(major, "must not be negative");
      out = parsed->minor_units;
      return true;
    }
    return !required || fail(major, std::string("is required (or ") + kFieldNames[minor] + ")");
  }

  bool get_tier(Field field, Tier& out, bool required) {
    const Value& v = raw_.values[field];
    if (v.kind == Kind::kAbsent) return !required || fail(field, "is required");
    auto tier = v.kind == Kind::kString ? parse_tier(v.text) : std::nullopt;
    if (!tier) return fail(field, "must be free, plus or premium, got " + shown(v.text));
    out = *tier;
    return true;
  }

  bool get_bool(Field field, bool& out) {
    const Value& v = raw_.values[field];
    if (v.kind == Kind::kAbsent) return true;
    if (v.kind == Kind::kBool) {
      out = v.boolean;
      return true;
    }
    if (v.text == "true" || v.text == "1") {
      out = true;
    } else if (v.text == "false" || v.text == "0") {
      out = false;
    } else {
      return fail(field, "must be true or false, got " + shown(v.text));
    }
    return true;
  }

  bool get_double(Field field, double& out) {
    const Value& v = raw_.values[field];
    if (v.kind == Kind::kAbsent) return true;
    double parsed = 0;
    auto [end, ec] = v.kind == Kind::kBool
                         ? std::from_chars_result{v.text.data(), std::errc::invalid_argument}
                         : std::from_chars(v.text.data(), v.text.data() + v.text.size(), parsed);
    if (ec != std::errc() || end != v.text.data() + v.text.size() || !std::isfinite(parsed)) {
      return fail(field, "must be a finite number, got " + shown(v.text));
    }
    out = parsed;
    return true;
  }

  bool build_user() {
    User user;
    if (!get_id(kUserId, user.user_id) || !get_tier(kTier, user.tier, false) ||
        !get_time(kSignupAt, user.signup_at, false) || !get_id(kCountry, user.country, false) ||
        !get_id(kAppVersion, user.app_version, false)) {
      return false;
    }
    for (const auto& [key, value] : raw_.attributes) {
      if (value.kind == Kind::kAbsent) continue;
      user.attributes.emplace(std::string(key), value.kind == Kind::kBool
                                                    ? (value.boolean ? "true" : "false")
                                                    : std::string(value.text));
    }
    user.event_id = std::move(event_id_);
    batch_.users.push_back(std::move(user));
    return true;
  }

  bool build_feature() {
    Feature feature;
    if (!get_id(kName, feature.name) || !get_tier(kRequiredTier, feature.required_tier, false) ||
        !get_money(kMaintenanceCost, kMaintenanceCostMinor, feature.monthly_maintenance_cost_minor,
                   false) ||
        !get_money(kRevenueValue, kRevenueValueMinor, feature.monthly_revenue_value_minor, false) ||
        !get_id(kCategory, feature.category, false)) {
      return false;
    }
    feature.event_id = std::move(event_id_);
    batch_.features.push_back(std::move(feature));
    return true;
  }

  bool build_feature_usage() {
    FeatureUsageEvent event;
    if (!get_id(kUserId, event.user_id) || !get_id(kFeature, event.feature) ||
        !get_time(kAt, event.at) || !get_int(kCount, event.count, 1, 1'000'000)) {
      return false;
    }
    event.event_id = std::move(event_id_);
    batch_.feature_usage.push_back(std::move(event));
    return true;
  }

  bool build_session() {
    SessionEvent event;
    if (!get_id(kUserId, event.user_id) || !get_time(kAt, event.at) ||
        !get_int(kDurationSeconds, event.duration_seconds, 0, 7 * kSecondsPerDay)) {
      return false;
    }
    event.event_id = std::move(event_id_);
    batch_.sessions.push_back(std::move(event));
    return true;
  }

  bool build_subscription_change() {
    SubscriptionChangeEvent event;
    if (!get_id(kUserId, event.user_id) || !get_time(kAt, event.at)) return false;
    const Value& kind = raw_.values[kKind];
    if (kind.kind == Kind::kAbsent) return fail(kKind, "is required");
    auto parsed_kind =
        kind.kind == Kind::kString ? parse_subscription_change(kind.text) : std::nullopt;
    if (!parsed_kind) {
      return fail(kKind, "must be upgrade, downgrade or cancel, got " + shown(kind.text));
    }
    event.kind = *parsed_kind;
    const bool is_cancel = event.kind == SubscriptionChangeKind::kCancel;
    event.to_tier = Tier::kFree;  // a cancellation ends on the free tier unless told
    if (!get_tier(kFromTier, event.from_tier, true) ||
        !get_tier(kToTier, event.to_tier, !is_cancel)) {
      return false;
    }
    if (event.kind == SubscriptionChangeKind::kUpgrade && event.to_tier <= event.from_tier) {
      return fail(kToTier, "an upgrade must go to a higher tier than from_tier");
    }
    if (event.kind == SubscriptionChangeKind::kDowngrade && event.to_tier >= event.from_tier) {
      return fail(kToTier, "a downgrade must go to a lower tier than from_tier");
    }
    if (is_cancel && event.from_tier == Tier::kFree) {
      return fail(kFromTier, "only a paid tier can be cancelled");
    }
    event.event_id = std::move(event_id_);
    batch_.subscription_changes.push_back(std::move(event));
    return true;
  }

  bool build_payment() {
    PaymentEvent event;
    if (!get_id(kUserId, event.user_id) || !get_time(kAt, event.at) ||
        !get_bool(kSucceeded, event.succeeded) ||
        !get_money(kAmount, kAmountMinor, event.amount_minor, true)) {
      return false;
    }
    event.event_id = std::move(event_id_);
    batch_.payments.push_back(std::move(event));
    return true;
  }

  bool build_paywall_hit() {
    PaywallHitEvent event;
    if (!get_id(kUserId, event.user_id) || !get_id(kFeature, event.feature) ||
        !get_time(kAt, event.at)) {
      return false;
    }
    event.event_id = std::move(event_id_);
    batch_.paywall_hits.push_back(std::move(event));
    return true;
  }

  bool build_exposure() {
    ExposureEvent event;
    if (!get_id(kExperimentId, event.experiment_id) || !get_id(kUserId, event.user_id) ||
        !get_id(kVariant, event.variant) || !get_time(kAt, event.at)) {
      return false;
    }
    if (options_.check_exposure) {
      if (auto problem = options_.check_exposure(event)) {
        error_field = std::move(problem->first);
        error_reason = std::move(problem->second);
        return false;
      }
    }
    event.event_id = std::move(event_id_);
    batch_.exposures.push_back(std::move(event));
    return true;
  }

  bool build_metric() {
    MetricEvent event;
    if (!get_id(kUserId, event.user_id) || !get_id(kMetric, event.metric) ||
        !get_double(kValue, event.value) || !get_time(kAt, event.at)) {
      return false;
    }
    event.event_id = std::move(event_id_);
    batch_.metric_events.push_back(std::move(event));
    return true;
  }

  const RawRecord& raw_;
  EventBatch& batch_;
  const DecodeOptions& options_;
  std::string event_id_;  // validated by build() for every type
};

// Our own words for simdjson's errors: library messages never reach a caller.
std::string json_error(simdjson::error_code error) {
  switch (error) {
    case simdjson::UTF8_ERROR:
      return "invalid UTF-8";
    case simdjson::DEPTH_ERROR:
      return "JSON nesting deeper than " + std::to_string(JsonLimits::kDefaultMaxDepth) +
             " levels";
    case simdjson::NUMBER_ERROR:
    case simdjson::NUMBER_OUT_OF_RANGE:
      return "number out of range or malformed";
    case simdjson::CAPACITY:
      return "record too large";
    default:
      return "invalid JSON syntax";
  }
}

// Collects one NDJSON line (an object) into `raw` with the simdjson On-Demand API.
void collect_json(simdjson::ondemand::parser& parser, const char* data, std::size_t length,
                  std::size_t capacity, RawRecord& raw) {
  using namespace simdjson;
  ondemand::document doc;
  if (auto error = parser.iterate(data, length, capacity).get(doc)) {
    raw.fail("", json_error(error));
    return;
  }
  ondemand::object object;
  if (doc.get_object().get(object)) {
    raw.fail("", "not a JSON object");
    return;
  }
  for (auto field_result : object) {
    ondemand::field field;
    std::string_view key;
    error_code key_error = std::move(field_result).get(field);
    if (!key_error) key_error = field.unescaped_key().get(key);
    if (key_error) {
      raw.fail("", json_error(key_error));
      return;
    }
    ondemand::value value = field.value();
    ondemand::json_type type;
    if (auto error = value.type().get(type)) {
      raw.fail(key, json_error(error));
      return;
    }
    Value out;
    error_code error = SUCCESS;
    switch (type) {
      case ondemand::json_type::string:
        out.kind = Kind::kString;
        error = value.get_string().get(out.text);
        break;
      case ondemand::json_type::number:
        out.kind = Kind::kNumber;
        out.text = value.raw_json_token();
        while (!out.text.empty() && (out.text.back() == ' ' || out.text.back() == '\t' ||
                                     out.text.back() == '\r' || out.text.back() == '\n')) {
          out.text.remove_suffix(1);
        }
        break;
      case ondemand::json_type::boolean:
        out.kind = Kind::kBool;
        error = value.get_bool().get(out.boolean);
        out.text = out.boolean ? "true" : "false";
        break;
      case ondemand::json_type::null: {
        bool is_null = false;
        error = value.is_null().get(is_null);
        if (!error && !is_null) error = INCORRECT_TYPE;
        break;  // null is the same as absent
      }
      case ondemand::json_type::object:
        if (key != "attributes") {
          raw.fail(key, "must not be an object");
          return;
        }
        {
          ondemand::object attributes;
          if ((error = value.get_object().get(attributes))) break;
          for (auto attribute_result : attributes) {
            ondemand::field attribute;
            std::string_view name;
            if ((error = std::move(attribute_result).get(attribute)) ||
                (error = attribute.unescaped_key().get(name))) {
              break;
            }
            ondemand::value attribute_value = attribute.value();
            ondemand::json_type attribute_type;
            if ((error = attribute_value.type().get(attribute_type))) break;
            Value attr;
            if (attribute_type == ondemand::json_type::string) {
              attr.kind = Kind::kString;
              error = attribute_value.get_string().get(attr.text);
            } else if (attribute_type == ondemand::json_type::number) {
              attr.kind = Kind::kNumber;
              attr.text = attribute_value.raw_json_token();
              while (!attr.text.empty() &&
                     std::isspace(static_cast<unsigned char>(attr.text.back()))) {
                attr.text.remove_suffix(1);
              }
            } else if (attribute_type == ondemand::json_type::boolean) {
              attr.kind = Kind::kBool;
              error = attribute_value.get_bool().get(attr.boolean);
            } else if (attribute_type == ondemand::json_type::null) {
              bool is_null = false;
              error = attribute_value.is_null().get(is_null);
              continue;
            } else {
              raw.fail("attributes." + std::string(name), "must be a string, number or boolean");
              return;
            }
            if (error) break;
            raw.set_attribute(name, attr);
          }
          out.kind = Kind::kAbsent;
          if (!error) continue;  // attributes are stored aside, not in a field slot
        }
        break;
      case ondemand::json_type::array:
        raw.fail(key, "must not be an array");
        return;
    }
    if (error) {
      raw.fail(key, json_error(error));
      return;
    }
    if (out.kind != Kind::kAbsent) raw.set(key, out);
    if (raw.failed) return;
  }
  const char* location = nullptr;
  if (!doc.current_location().get(location)) {
    raw.fail("", "trailing content after the JSON object");
  }
}

bool is_blank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

}  // namespace

std::string RecordError::to_string() const {
  std::string out = "line " + std::to_string(line) + ": ";
  if (!field.empty()) out += "field '" + field + "': ";
  out += reason;
  return out;
}

std::optional<EventFormat> parse_event_format(std::string_view name) {
  if (name == "ndjson" || name == "jsonl") return EventFormat::kNdjson;
  if (name == "csv") return EventFormat::kCsv;
  return std::nullopt;
}

EventFormat event_format_from_path(std::string_view path) {
  return path.ends_with(".csv") || path.ends_with(".CSV") ? EventFormat::kCsv
                                                          : EventFormat::kNdjson;
}

// The reader keeps a byte buffer with SIMDJSON_PADDING spare bytes after its end, so each
// NDJSON line is parsed in place; the buffer is refilled from the source as records are
// consumed and grows only when a single record does not fit.
class EventReader::Impl {
 public:
  Impl(std::istream* in, EventFormat format, std::size_t records_per_chunk, DecodeOptions options)
      : in_(in),
        format_(format),
        records_per_chunk_(std::max<std::size_t>(1, records_per_chunk)),
        options_(std::move(options)) {
    limit_depth();
    resize(kInitialCapacity);
  }
  Impl(std::string_view text, EventFormat format, std::size_t records_per_chunk,
       DecodeOptions options)
      : in_(nullptr),
        format_(format),
        records_per_chunk_(std::max<std::size_t>(1, records_per_chunk)),
        options_(std::move(options)) {
    limit_depth();
    resize(text.size());
    std::memcpy(buffer_.data(), text.data(), text.size());
    end_ = text.size();
    eof_ = true;
  }

  Result<bool> next(DecodedChunk& chunk) {
    chunk = DecodedChunk{};
    if (!start_read_) {
      auto status = skip_byte_order_mark();
      if (!status.is_ok()) return status;
    }
    if (format_ == EventFormat::kCsv && !header_read_) {
      auto status = read_csv_header();
      if (!status.is_ok()) return status;
    }
    while (static_cast<std::size_t>(chunk.records) < records_per_chunk_) {
      std::size_t record_end = 0, next_begin = 0;
      auto found = find_record(record_end, next_begin);
      if (!found.is_ok()) return found.status();
      if (!*found) break;
      const std::int64_t start_line = line_;
      line_ += lines_in_record_;
      std::string_view text(buffer_.data() + begin_, record_end - begin_);
      if (format_ == EventFormat::kNdjson ? is_blank(text) : text.empty() || text == "\r") {
        begin_ = next_begin;
        continue;
      }
      raw_.reset(start_line);
      if (format_ == EventFormat::kNdjson) {
        collect_json(parser_, text.data(), text.size(), buffer_.size() - begin_, raw_);
      } else {
        collect_csv(text);
      }
      begin_ = next_begin;
      if (chunk.records == 0) chunk.first_line = start_line;
      chunk.last_line = start_line;
      ++chunk.records;
      if (!raw_.failed) {
        RecordBuilder builder(raw_, chunk.batch, options_);
        if (builder.build()) continue;
        raw_.fail(builder.error_field, std::move(builder.error_reason));
      }
      ++chunk.invalid_records;
      if (chunk.errors.size() < DecodedChunk::kMaxErrorsPerChunk) {
        chunk.errors.push_back({start_line, raw_.error_field, raw_.error_reason});
      }
    }
    return chunk.records > 0;
  }

 private:
  // Small at first: fill() grows the buffer to the longest record it meets, and a reader
  // of a short input (or a fuzzer's millions of them) should not zero 4 MiB up front.
  static constexpr std::size_t kInitialCapacity = 256u << 10;
  static constexpr std::size_t kReadSize = 128u << 10;

  // The same nesting limit as every other JSON parse of untrusted input (an event record
  // is flat apart from "attributes"); simdjson answers DEPTH_ERROR beyond it.
  // The capacity is small on purpose: iterate() grows it per line and keeps the depth limit.
  // A failed allocation resurfaces as the first iterate()'s error.
  void limit_depth() {
    const simdjson::error_code error = parser_.allocate(1024, JsonLimits::kDefaultMaxDepth);
    static_cast<void>(error);
  }

  // A UTF-8 byte-order mark (what some editors and spreadsheet exports write first) is not
  // part of the first record.
  Status skip_byte_order_mark() {
    start_read_ = true;
    constexpr std::string_view kBom = "\xEF\xBB\xBF";
    while (end_ - begin_ < kBom.size()) {
      auto more = fill();
      if (!more.is_ok()) return more.status();
      if (!*more) break;
    }
    if (std::string_view(buffer_.data() + begin_, end_ - begin_).starts_with(kBom)) {
      begin_ += kBom.size();
    }
    return Status::ok();
  }

  // Usable capacity excludes the padding.
  std::size_t capacity() const { return buffer_.size() - simdjson::SIMDJSON_PADDING; }
  void resize(std::size_t capacity) { buffer_.resize(capacity + simdjson::SIMDJSON_PADDING); }

  // Moves unread bytes to the front, grows when full, and reads more. Returns false at EOF.
  Result<bool> fill() {
    if (eof_) return false;
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (capacity() - end_ < kReadSize) {
      if (end_ > kMaxRecordBytes) {
        return invalid_argument("line " + std::to_string(line_) + ": record longer than " +
                                std::to_string(kMaxRecordBytes) + " bytes");
      }
      resize(std::max(capacity() * 2, end_ + kReadSize));
    }
    const auto got =
        in_->rdbuf()->sgetn(buffer_.data() + end_, static_cast<std::streamsize>(capacity() - end_));
    if (got <= 0) {
      if (in_->bad()) return Status(StatusCode::kUnavailable, "read error");
      eof_ = true;
      return false;
    }
    end_ += static_cast<std::size_t>(got);
    return true;
  }

  // Finds the record starting at begin_: sets record_end (exclusive, without the line
  // break) and next_begin, counting physical lines in lines_in_record_. False at the end.
  Result<bool> find_record(std::size_t& record_end, std::size_t& next_begin) {
    while (true) {
      const std::size_t scanned = format_ == EventFormat::kNdjson
                                      ? scan_line(record_end, next_begin)
                                      : scan_csv_record(record_end, next_begin);
      if (scanned) return true;
      auto more = fill();
      if (!more.is_ok()) return more.status();
      if (*more) continue;
      // End of input: the rest (if any) is a last record without a line break.
      if (begin_ >= end_) return false;
      if (format_ == EventFormat::kCsv && csv_open_quote_) {
        // An unterminated quote swallows the rest of the input; report it once.
        record_end = next_begin = end_;
        lines_in_record_ = 0;
        csv_unterminated_ = true;
        return true;
      }
      record_end = next_begin = end_;
      lines_in_record_ = 1;
      return true;
    }
  }

  bool scan_line(std::size_t& record_end, std::size_t& next_begin) {
    const void* newline = std::memchr(buffer_.data() + begin_, '\n', end_ - begin_);
    if (!newline) return false;
    record_end = static_cast<std::size_t>(static_cast<const char*>(newline) - buffer_.data());
    next_begin = record_end + 1;
    lines_in_record_ = 1;
    return true;
  }

  // RFC 4180: a record ends at a line break outside double quotes.
  bool scan_csv_record(std::size_t& record_end, std::size_t& next_begin) {
    bool in_quotes = false;
    std::int64_t newlines = 0;
    const char* data = buffer_.data();
    for (std::size_t i = begin_; i < end_; ++i) {
      const char c = data[i];
      if (c == '"') {
        in_quotes = !in_quotes;  // "" inside quotes toggles twice: stays quoted
      } else if (c == '\n') {
        ++newlines;
        if (!in_quotes) {
          record_end = i;
          next_begin = i + 1;
          lines_in_record_ = newlines;
          return true;
        }
      }
    }
    csv_open_quote_ = in_quotes;
    return false;
  }

  // Splits one CSV record into cells_ (unquoted, "" -> "). Returns false on a syntax error
  // (recorded in raw_).
  bool split_csv(std::string_view text) {
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    cells_count_ = 0;
    std::size_t i = 0;
    while (true) {
      std::string& cell = next_cell();
      if (i < text.size() && text[i] == '"') {
        ++i;
        while (true) {
          if (i >= text.size()) {
            raw_.fail("", "unterminated quoted field");
            return false;
          }
          if (text[i] == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              cell.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          cell.push_back(text[i++]);
        }
        if (i < text.size() && text[i] != ',') {
          raw_.fail("", "unexpected character after a closing quote in column " +
                            std::to_string(cells_count_));
          return false;
        }
      } else {
        const std::size_t start = i;
        while (i < text.size() && text[i] != ',') {
          if (text[i] == '"') {
            raw_.fail("", "double quote inside an unquoted field in column " +
                              std::to_string(cells_count_) +
                              " (quote the whole field and double the quote)");
            return false;
          }
          ++i;
        }
        cell.assign(text.substr(start, i - start));
      }
      if (i >= text.size()) return true;
      ++i;  // the comma
    }
  }

  // Cells are reused across records to keep their allocations.
  std::string& next_cell() {
    if (cells_count_ == cells_.size()) cells_.emplace_back();
    std::string& cell = cells_[cells_count_++];
    cell.clear();
    return cell;
  }

  void collect_csv(std::string_view text) {
    cells_count_ = 0;
    if (csv_unterminated_) {
      raw_.fail("", "unterminated quoted field (runs to the end of the input)");
      return;
    }
    if (!split_csv(text)) return;
    if (cells_count_ != columns_.size()) {
      raw_.fail("", "expected " + std::to_string(columns_.size()) + " columns, found " +
                        std::to_string(cells_count_));
      return;
    }
    for (std::size_t c = 0; c < cells_count_; ++c) {
      if (cells_[c].empty()) continue;  // an empty cell is an absent field
      if (!simdjson::validate_utf8(cells_[c].data(), cells_[c].size())) {
        const Column& column = columns_[c];
        raw_.fail(column.field ? std::string(kFieldNames[*column.field])
                               : std::string(kAttributesPrefix) + std::string(column.attribute),
                  "is not valid UTF-8");
        return;
      }
      Value value{Kind::kString, cells_[c], false};
      const Column& column = columns_[c];
      if (column.field) {
        raw_.values[*column.field] = value;
      } else {
        raw_.set_attribute(column.attribute, value);
      }
    }
  }

  Status read_csv_header() {
    header_read_ = true;
    std::size_t record_end = 0, next_begin = 0;
    auto found = find_record(record_end, next_begin);
    if (!found.is_ok()) return found.status();
    if (!*found) return invalid_argument("CSV input is empty: expected a header line", "header");
    line_ += lines_in_record_;
    raw_.reset(1);
    cells_count_ = 0;
    std::string_view text(buffer_.data() + begin_, record_end - begin_);
    begin_ = next_begin;
    if (csv_unterminated_ || !split_csv(text)) {
      return invalid_argument(
          "line 1: bad CSV header: " + (raw_.failed ? raw_.error_reason : "unterminated quote"),
          "header");
    }
    bool has_type = false;
    for (std::size_t c = 0; c < cells_count_; ++c) {
      const std::string& name = cells_[c];
      if (!simdjson::validate_utf8(name.data(), name.size()) || name.size() > kMaxIdLength) {
        return invalid_argument("line 1: CSV column " + std::to_string(c + 1) +
                                    " is not a name of at most " + std::to_string(kMaxIdLength) +
                                    " bytes of UTF-8",
                                "header");
      }
      Column column;
      if (name.starts_with(kAttributesPrefix) && name.size() > kAttributesPrefix.size()) {
        header_names_.push_back(name.substr(kAttributesPrefix.size()));
      } else {
        column.field = lookup_field(name);
        if (!column.field) {
          return invalid_argument("line 1: unknown CSV column " + shown(name), name);
        }
        has_type |= *column.field == kType;
        header_names_.push_back(name);
      }
      for (const Column& earlier : columns_) {
        if (earlier.field == column.field && column.field) {
          return invalid_argument("line 1: duplicate CSV column " + shown(name), name);
        }
      }
      columns_.push_back(column);
    }
    if (!has_type) return invalid_argument("line 1: CSV header has no 'type' column", "type");
    // Attribute names are views into header_names_, which no longer changes.
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      if (!columns_[c].field) {
        for (std::size_t e = 0; e < c; ++e) {
          if (!columns_[e].field && columns_[e].attribute == header_names_[c]) {
            return invalid_argument(
                "line 1: duplicate CSV column 'attributes." + header_names_[c] + "'",
                "attributes." + header_names_[c]);
          }
        }
        columns_[c].attribute = header_names_[c];
      }
    }
    return Status::ok();
  }

  struct Column {
    std::optional<Field> field;  // nullopt: a user attribute
    std::string_view attribute;
  };

  std::istream* in_;
  EventFormat format_;
  std::size_t records_per_chunk_;
  DecodeOptions options_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;
  bool eof_ = false;
  std::int64_t line_ = 1;  // physical line number of the record at begin_
  std::int64_t lines_in_record_ = 0;
  simdjson::ondemand::parser parser_;
  RawRecord raw_;
  bool start_read_ = false;  // the byte-order mark check ran
  // CSV state.
  bool header_read_ = false;
  bool csv_open_quote_ = false, csv_unterminated_ = false;
  std::vector<Column> columns_;
  std::vector<std::string> header_names_;
  std::vector<std::string> cells_;
  std::size_t cells_count_ = 0;
};

DecodeOptions DecodeOptions::plausible_times(UnixSeconds now) {
  DecodeOptions options;
  options.earliest_time = limits::kEarliestEventTime;
  options.latest_time = now + limits::kMaxFutureSeconds;
  return options;
}

EventReader::EventReader(std::istream& in, EventFormat format, std::size_t records_per_chunk,
                         DecodeOptions options)
    : impl_(std::make_unique<Impl>(&in, format, records_per_chunk, std::move(options))) {}
EventReader::EventReader(std::string_view text, EventFormat format, std::size_t records_per_chunk,
                         DecodeOptions options)
    : impl_(std::make_unique<Impl>(text, format, records_per_chunk, std::move(options))) {}
EventReader::~EventReader() = default;

Result<bool> EventReader::next(DecodedChunk& chunk) { return impl_->next(chunk); }

Result<DecodedChunk> decode_events(std::string_view text, EventFormat format,
                                   DecodeOptions options) {
  EventReader reader(text, format, SIZE_MAX, std::move(options));
  DecodedChunk chunk;
  auto more = reader.next(chunk);
  if (!more.is_ok()) return more.status();
  return chunk;
}

Result<IngestReport> ingest_chunk(Store& store, const DecodedChunk& chunk,
                                  InvalidRecordPolicy policy, const IngestOptions& options) {
  if (!chunk.ok() && policy == InvalidRecordPolicy::kRejectChunk) {
    const RecordError& first = chunk.errors.front();
    std::string message = first.to_string();
    if (chunk.invalid_records > 1) {
      message += " (and " + std::to_string(chunk.invalid_records - 1) + " more invalid records)";
    }
    message += "; nothing of lines " + std::to_string(chunk.first_line) + "-" +
               std::to_string(chunk.last_line) + " was stored";
    return invalid_argument(std::move(message), first.field);
  }
  return store.ingest(chunk.batch, options);
}

}  // namespace fulcrum
