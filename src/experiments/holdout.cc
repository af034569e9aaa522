#include "experiments/holdout.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "assign/hash.h"
#include "core/ids.h"
#include "core/limits.h"
#include "core/untrusted_json.h"
#include "experiments/service.h"
#include "stats/hypothesis.h"

namespace fulcrum::experiments {
namespace {

using json = nlohmann::json;

const std::set<std::string> kCreateFields = {"holdout_id", "name",           "description",
                                             "percent",    "hash_attribute", "seed",
                                             "start_date", "metrics",        "metric_types"};
const std::set<std::string> kEditableFields = {"name", "description", "metrics", "metric_types",
                                               "version"};

Status string_field(const json& request, const char* key, std::string& out, bool required,
                    std::size_t max_bytes = limits::kMaxIdBytes) {
  auto it = request.find(key);
  if (it == request.end() || it->is_null()) {
    return required ? invalid_argument("is required", key) : Status::ok();
  }
  if (!it->is_string()) return invalid_argument("must be a string", key);
  out = it->get<std::string>();
  if (required && out.empty()) return invalid_argument("must not be empty", key);
  return limits::check_text(out, key, max_bytes, /*allow_empty=*/!required);
}

// metrics and metric_types (both optional) into `holdout.metrics`.
Status parse_metrics(const json& request, Holdout& holdout) {
  std::vector<std::string> names = {"conversion_rate", "revenue_per_user"};
  if (auto it = request.find("metrics"); it != request.end() && !it->is_null()) {
    if (!it->is_array() || it->empty() || it->size() > limits::kMaxMetrics) {
      return invalid_argument(
          "must be a list of 1 to " + std::to_string(limits::kMaxMetrics) + " metric names",
          "metrics");
    }
    names.clear();
    for (std::size_t i = 0; i < it->size(); ++i) {
      const std::string field = "metrics[" + std::to_string(i) + "]";
      const json& name = (*it)[i];
      if (!name.is_string() || name.get_ref<const std::string&>().empty()) {
        return invalid_argument("must be a non-empty string", field);
      }
      FULCRUM_RETURN_IF_ERROR(limits::check_id(name.get_ref<const std::string&>(), field));
      if (std::find(names.begin(), names.end(), name.get<std::string>()) != names.end()) {
        return invalid_argument("duplicate metric", field);
      }
      names.push_back(name.get<std::string>());
    }
  }
  holdout.metrics.clear();
  for (const std::string& name : names) {
    stats::MetricType type = default_metric_type(name);
    if (type == stats::MetricType::kQuantile) type = stats::MetricType::kContinuous;
    holdout.metrics.push_back({name, type});
  }
  if (auto types = request.find("metric_types"); types != request.end() && !types->is_null()) {
    if (!types->is_object()) return invalid_argument("must be an object", "metric_types");
    for (auto it = types->begin(); it != types->end(); ++it) {
      const std::string field = "metric_types." + it.key();
      auto metric = std::find_if(holdout.metrics.begin(), holdout.metrics.end(),
                                 [&](const HoldoutMetric& m) { return m.name == it.key(); });
      if (metric == holdout.metrics.end()) return invalid_argument("not one of metrics", field);
      if (*it == "binomial") {
        metric->type = stats::MetricType::kBinomial;
      } else if (*it == "continuous") {
        metric->type = stats::MetricType::kContinuous;
      } else {
        return invalid_argument("must be \"binomial\" or \"continuous\"", field);
      }
    }
  }
  return Status::ok();
}

json metric_types_json(const Holdout& holdout) {
  json types = json::object();
  for (const HoldoutMetric& m : holdout.metrics) types[m.name] = stats::metric_type_name(m.type);
  return types;
}

json metric_names_json(const Holdout& holdout) {
  json names = json::array();
  for (const HoldoutMetric& m : holdout.metrics) names.push_back(m.name);
  return names;
}

Result<Holdout> holdout_from_json(const json& body) {
  Holdout h;
  try {
    h.holdout_id = body.at("holdout_id").get<std::string>();
    h.name = body.at("name").get<std::string>();
    h.description = body.value("description", std::string());
    h.percent = body.at("percent").get<double>();
    h.hash_attribute = body.at("hash_attribute").get<std::string>();
    h.seed = body.at("seed").get<std::string>();
    h.status = body.at("status") == "stopped" ? HoldoutStatus::kStopped : HoldoutStatus::kRunning;
    h.started_at = parse_iso8601(body.at("started_at").get<std::string>()).value_or(0);
    if (body.contains("stopped_at") && body["stopped_at"].is_string()) {
      h.stopped_at = parse_iso8601(body["stopped_at"].get<std::string>());
    }
    h.created_at = parse_iso8601(body.at("created_at").get<std::string>()).value_or(0);
    h.updated_at = parse_iso8601(body.at("updated_at").get<std::string>()).value_or(0);
    h.created_by = body.value("created_by", std::string());
    h.updated_by = body.value("updated_by", std::string());
  } catch (const json::exception& e) {
    return internal_error(std::string("stored holdout is malformed: ") + e.what());
  }
  json request = {{"metrics", body.value("metrics", json::array())},
                  {"metric_types", body.value("metric_types", json::object())}};
  FULCRUM_RETURN_IF_ERROR(parse_metrics(request, h));
  return h;
}

Status save(Store& store, Holdout& h) {
  Document doc;
  doc.id = h.holdout_id;
  doc.kind = kHoldoutDocumentKind;
  doc.status = holdout_status_name(h.status);
  doc.created_at = h.created_at;
  doc.updated_at = h.updated_at;
  doc.version = h.version;
  json body = to_json(h);
  body.erase("version");
  doc.body = body.dump();
  auto version = store.put_document(doc);
  if (!version) return version.status();
  h.version = *version;
  return Status::ok();
}

Result<Holdout> parse_document(const Document& doc) {
  json body = json::parse(doc.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return internal_error("stored holdout " + doc.id + " is not JSON");
  auto h = holdout_from_json(body);
  if (!h) return h.status();
  h->version = doc.version;
  return h;
}

Status check_version(const json& patch, const Holdout& stored) {
  auto it = patch.find("version");
  if (it == patch.end()) return Status::ok();
  if (!it->is_number_integer()) return invalid_argument("must be an integer", "version");
  if (it->get<std::int64_t>() != stored.version) {
    return failed_precondition("holdout " + stored.holdout_id + " is at version " +
                               std::to_string(stored.version) + ", not " + it->dump());
  }
  return Status::ok();
}

}  // namespace

const char* holdout_status_name(HoldoutStatus status) {
  return status == HoldoutStatus::kRunning ? "running" : "stopped";
}

std::optional<double> Holdout::bucket(const json& attributes) const {
  if (!attributes.is_object()) return std::nullopt;
  auto it = attributes.find(hash_attribute);
  if (it == attributes.end() || it->is_null()) return std::nullopt;
  // As the SDKs' getHashAttribute: strings as they are, other values as their text.
  const std::string value = it->is_string() ? it->get<std::string>() : it->dump();
  if (value.empty()) return std::nullopt;
  return assign::hash(seed, value, 2);
}

bool Holdout::holds_out(const json& attributes) const {
  if (status != HoldoutStatus::kRunning) return false;
  const std::optional<double> b = bucket(attributes);
  return b && *b < share();
}

json to_json(const Holdout& h) {
  return {{"holdout_id", h.holdout_id},
          {"name", h.name},
          {"description", h.description},
          {"percent", h.percent},
          {"hash_attribute", h.hash_attribute},
          {"seed", h.seed},
          {"metrics", metric_names_json(h)},
          {"metric_types", metric_types_json(h)},
          {"status", holdout_status_name(h.status)},
          {"started_at", format_iso8601(h.started_at)},
          {"stopped_at", h.stopped_at ? json(format_iso8601(*h.stopped_at)) : json(nullptr)},
          {"created_at", format_iso8601(h.created_at)},
          {"updated_at", format_iso8601(h.updated_at)},
          {"created_by", h.created_by},
          {"updated_by", h.updated_by},
          {"version", h.version}};
}

Result<Holdout> create_holdout(Store& store, const Clock& clock, const json& request,
                               const std::string& actor) {
  if (!request.is_object()) return invalid_argument("request body must be a JSON object");
  for (auto it = request.begin(); it != request.end(); ++it) {
    if (!kCreateFields.contains(it.key())) {
      const std::string field = shorten_for_message(it.key(), limits::kMaxIdBytes);
      return invalid_argument("unknown field '" + field + "'", field);
    }
  }
  Holdout h;
  h.holdout_id = new_id("holdout");
  FULCRUM_RETURN_IF_ERROR(string_field(request, "holdout_id", h.holdout_id, false));
  if (!is_valid_external_id(h.holdout_id)) {
    return invalid_argument("must be 1..128 characters of [A-Za-z0-9_.:@-]", "holdout_id");
  }
  FULCRUM_RETURN_IF_ERROR(string_field(request, "name", h.name, true));
  FULCRUM_RETURN_IF_ERROR(
      string_field(request, "description", h.description, false, limits::kMaxDescriptionBytes));
  if (auto it = request.find("percent"); it != request.end() && !it->is_null()) {
    if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() <= 0 ||
        it->get<double>() > kMaxHoldoutPercent) {
      return invalid_argument("must be a number in (0, 20]: the percent of users held out",
                              "percent");
    }
    h.percent = it->get<double>();
  }
  FULCRUM_RETURN_IF_ERROR(string_field(request, "hash_attribute", h.hash_attribute, false));
  if (h.hash_attribute.empty()) return invalid_argument("must not be empty", "hash_attribute");
  h.seed = h.holdout_id;
  FULCRUM_RETURN_IF_ERROR(string_field(request, "seed", h.seed, false));
  if (h.seed.empty()) return invalid_argument("must not be empty", "seed");
  FULCRUM_RETURN_IF_ERROR(parse_metrics(request, h));
  const UnixSeconds now = clock.now();
  h.started_at = now;
  if (auto it = request.find("start_date"); it != request.end() && !it->is_null()) {
    const std::optional<UnixSeconds> start =
        it->is_string() ? parse_iso8601(it->get<std::string>()) : std::nullopt;
    if (!start) return invalid_argument("must be an ISO-8601 time", "start_date");
    if (*start > now) return invalid_argument("must not be in the future", "start_date");
    h.started_at = *start;
  }
  h.created_at = h.updated_at = now;
  h.created_by = h.updated_by = actor;
  FULCRUM_RETURN_IF_ERROR(save(store, h));
  return h;
}

Result<Holdout> get_holdout(Store& store, const std::string& holdout_id) {
  auto doc = store.get_document(kHoldoutDocumentKind, holdout_id);
  if (!doc) return doc.status();
  if (!doc->has_value()) return not_found("no holdout with id '" + holdout_id + "'");
  return parse_document(**doc);
}

Result<std::vector<Holdout>> list_holdouts(Store& store) {
  auto docs = store.list_documents(kHoldoutDocumentKind);
  if (!docs) return docs.status();
  std::vector<Holdout> out;
  for (const Document& doc : *docs) {
    auto h = parse_document(doc);
    if (!h) return h.status();
    out.push_back(std::move(*h));
  }
  std::sort(out.begin(), out.end(), [](const Holdout& a, const Holdout& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.holdout_id < b.holdout_id;
  });
  return out;
}

Result<Holdout> update_holdout(Store& store, const Clock& clock, const std::string& holdout_id,
                               const json& patch, const std::string& actor) {
  if (!patch.is_object()) return invalid_argument("request body must be a JSON object");
  auto loaded = get_holdout(store, holdout_id);
  if (!loaded) return loaded.status();
  Holdout h = std::move(*loaded);
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (kEditableFields.contains(it.key())) continue;
    const std::string field = shorten_for_message(it.key(), limits::kMaxIdBytes);
    if (kCreateFields.contains(it.key())) {
      return invalid_argument("decides who is held out and is fixed at creation", field);
    }
    return invalid_argument("unknown field '" + field + "'", field);
  }
  FULCRUM_RETURN_IF_ERROR(check_version(patch, h));
  if (patch.contains("name")) FULCRUM_RETURN_IF_ERROR(string_field(patch, "name", h.name, true));
  if (patch.contains("description")) {
    FULCRUM_RETURN_IF_ERROR(
        string_field(patch, "description", h.description, false, limits::kMaxDescriptionBytes));
  }
  if (patch.contains("metrics") || patch.contains("metric_types")) {
    // The metrics named after the patch keep the types they had unless it gives new ones.
    const json metrics = patch.contains("metrics") ? patch["metrics"] : metric_names_json(h);
    json types = json::object();
    for (const HoldoutMetric& m : h.metrics) {
      if (metrics.is_array() &&
          std::find(metrics.begin(), metrics.end(), json(m.name)) != metrics.end()) {
        types[m.name] = stats::metric_type_name(m.type);
      }
    }
    if (auto given = patch.find("metric_types"); given != patch.end() && !given->is_null()) {
      if (!given->is_object()) return invalid_argument("must be an object", "metric_types");
      for (auto it = given->begin(); it != given->end(); ++it) types[it.key()] = it.value();
    }
    FULCRUM_RETURN_IF_ERROR(parse_metrics({{"metrics", metrics}, {"metric_types", types}}, h));
  }
  h.updated_at = clock.now();
  h.updated_by = actor;
  FULCRUM_RETURN_IF_ERROR(save(store, h));
  return h;
}

Result<Holdout> stop_holdout(Store& store, const Clock& clock, const std::string& holdout_id,
                             const std::string& actor) {
  auto loaded = get_holdout(store, holdout_id);
  if (!loaded) return loaded.status();
  Holdout h = std::move(*loaded);
  if (h.status == HoldoutStatus::kStopped) {
    return failed_precondition("holdout " + holdout_id + " is already stopped");
  }
  h.status = HoldoutStatus::kStopped;
  h.stopped_at = std::max(clock.now(), h.started_at);
  h.updated_at = clock.now();
  h.updated_by = actor;
  FULCRUM_RETURN_IF_ERROR(save(store, h));
  return h;
}

Status check_holdout_opt_in(Store& store, const std::string& holdout_id, const std::string& field) {
  auto doc = store.get_document(kHoldoutDocumentKind, holdout_id);
  if (!doc) return doc.status();
  if (!doc->has_value()) {
    return invalid_argument(
        "no holdout with id '" + shorten_for_message(holdout_id, limits::kMaxIdBytes) + "'", field);
  }
  if ((*doc)->status != holdout_status_name(HoldoutStatus::kRunning)) {
    return invalid_argument("holdout '" + holdout_id + "' is stopped: it holds no one out", field);
  }
  return Status::ok();
}

// --- cumulative impact -----------------------------------------------------------------------

namespace {

// The start of the calendar month (UTC) after the one holding `t`.
UnixSeconds next_month_start(UnixSeconds t) {
  using namespace std::chrono;
  const sys_days day = floor<days>(sys_seconds(seconds(t)));
  const year_month_day date(day);
  const year_month next = year_month(date.year(), date.month()) + months(1);
  return duration_cast<seconds>(sys_days(next / 1).time_since_epoch()).count();
}

std::string month_label(UnixSeconds t) { return format_iso8601(t).substr(0, 7); }

// Sufficient statistics of one metric over one period, per group.
struct PeriodCell {
  stats::SampleStats holdout, general;
};

json effect_json(const stats::EffectTest& test) {
  return {{"estimate", test.estimate},
          {"standard_error", test.standard_error},
          {"ci_lower", test.ci.lower},
          {"ci_upper", test.ci.upper},
          {"p_value", test.p_value}};
}

json group_json(const stats::SampleStats& s) {
  return {{"users", s.n},
          {"sum", s.sum},
          {"mean", s.n > 0 ? json(s.sum / static_cast<double>(s.n)) : json(nullptr)}};
}

json cell_json(const PeriodCell& cell, stats::MetricType type, double alpha) {
  json out = {{"holdout", group_json(cell.holdout)},
              {"general", group_json(cell.general)},
              {"absolute", nullptr},
              {"relative", nullptr}};
  const Result<stats::Comparison> comparison =
      type == stats::MetricType::kBinomial
          ? stats::compare_proportions(cell.holdout, cell.general, alpha)
          : stats::compare_means(cell.holdout, cell.general, alpha);
  if (comparison.is_ok()) {
    out["absolute"] = effect_json(comparison->absolute);
    if (comparison->relative) out["relative"] = effect_json(*comparison->relative);
  } else {
    out["not_compared"] = comparison.status().message();
  }
  return out;
}

void add(stats::SampleStats& s, double value) {
  s.n += 1;
  s.sum += value;
  s.sum_squares += value * value;
}

}  // namespace

Result<json> holdout_impact(Store& store, const Clock& clock, const std::string& holdout_id,
                            double alpha) {
  auto loaded = get_holdout(store, holdout_id);
  if (!loaded) return loaded.status();
  const Holdout& h = *loaded;
  const UnixSeconds end = h.stopped_at.value_or(clock.now());

  // Month edges: started_at, the following month starts, end.
  std::vector<UnixSeconds> edges = {h.started_at};
  while (edges.back() < end) edges.push_back(std::min(next_month_start(edges.back()), end));
  if (edges.size() > static_cast<std::size_t>(kMaxHoldoutImpactMonths) + 1) {
    edges.erase(edges.begin(), edges.end() - (kMaxHoldoutImpactMonths + 1));
  }
  const UnixSeconds from = h.started_at;  // cumulative sums start here, whatever is shown
  const std::size_t months = edges.size() - 1;

  // cells[metric][month]: the month alone and since `from`.
  std::vector<std::vector<PeriodCell>> monthly(h.metrics.size(), std::vector<PeriodCell>(months)),
      cumulative = monthly;
  std::vector<std::int64_t> holdout_users(months, 0), general_users(months, 0);
  for (std::size_t m = 0; m < h.metrics.size() && months > 0; ++m) {
    const bool binomial = h.metrics[m].type == stats::MetricType::kBinomial;
    // Chunks of months per store pass; a chunk that starts after `from` begins with one
    // period [from, chunk start) that carries each user's sum before it, for the
    // cumulative sums.
    for (std::size_t first = 0; first < months;) {
      std::vector<UnixSeconds> chunk_edges;
      const std::size_t offset = edges[first] > from ? 1 : 0;
      if (offset) chunk_edges.push_back(from);
      const std::size_t count = std::min(months - first, kMaxMetricSumPeriods - offset);
      for (std::size_t i = 0; i <= count; ++i) chunk_edges.push_back(edges[first + i]);
      Status scanned = store.scan_user_period_sums(
          h.metrics[m].name, chunk_edges, [&](const User& user, const double* sums) {
            // Membership by hash as while the holdout ran (a stopped one releases its
            // users, but its analysis is of those it held out).
            const std::optional<double> bucket = h.bucket(user_attributes(user));
            if (!bucket) return;  // no hash attribute: in neither group
            const bool held_out = *bucket < h.share();
            double running = offset ? sums[0] : 0.0;
            for (std::size_t i = 0; i < count; ++i) {
              const std::size_t month = first + i;
              running += sums[offset + i];
              if (user.signup_at >= edges[month + 1]) continue;  // not a user yet
              if (m == 0) (held_out ? holdout_users : general_users)[month] += 1;
              const double in_month = sums[offset + i];
              PeriodCell& alone = monthly[m][month];
              PeriodCell& since = cumulative[m][month];
              add((held_out ? alone.holdout : alone.general),
                  binomial ? (in_month > 0 ? 1.0 : 0.0) : in_month);
              add((held_out ? since.holdout : since.general),
                  binomial ? (running > 0 ? 1.0 : 0.0) : running);
            }
          });
      if (!scanned.is_ok()) return scanned;
      first += count;
    }
  }
  json periods = json::array();
  for (std::size_t month = 0; month < months; ++month) {
    json alone = json::object(), since = json::object();
    for (std::size_t m = 0; m < h.metrics.size(); ++m) {
      alone[h.metrics[m].name] = cell_json(monthly[m][month], h.metrics[m].type, alpha);
      since[h.metrics[m].name] = cell_json(cumulative[m][month], h.metrics[m].type, alpha);
    }
    periods.push_back({{"month", month_label(edges[month])},
                       {"from", format_iso8601(edges[month])},
                       {"to", format_iso8601(edges[month + 1])},
                       {"holdout_users", holdout_users[month]},
                       {"general_users", general_users[month]},
                       {"monthly", alone},
                       {"cumulative", since}});
  }

  json tests = json::array();
  auto all_tests = list_ab_tests(store);
  if (!all_tests) return all_tests.status();
  for (const Experiment& test : *all_tests) {
    if (test.config.holdout_id != holdout_id) continue;
    json shipped = nullptr;
    if (test.status == ExperimentStatus::kCompleted) {
      shipped = test.winner.value_or(test.config.control);
    }
    tests.push_back({{"test_id", test.test_id},
                     {"test_name", test.config.test_name},
                     {"feature_name", test.config.feature_name},
                     {"status", status_name(test.status)},
                     {"winner", test.winner ? json(*test.winner) : json(nullptr)},
                     {"shipped", shipped}});
  }
  json metrics = json::array();
  for (const HoldoutMetric& m : h.metrics) {
    metrics.push_back({{"name", m.name}, {"type", stats::metric_type_name(m.type)}});
  }
  return json{{"holdout", to_json(h)},        {"alpha", alpha},
              {"from", format_iso8601(from)}, {"to", format_iso8601(end)},
              {"metrics", metrics},           {"comparison", "general population minus holdout"},
              {"periods", periods},           {"ab_tests", tests}};
}

}  // namespace fulcrum::experiments
