// The Python package `fulcrum`: AutomatedOptimization with the seed's methods and keyword
// arguments, over the same library calls as the HTTP routes (optimization/, experiments/),
// returning dicts and lists with the contract's fields. Errors raise fulcrum.Error
// subclasses carrying `field` (the input field at fault, "" when none), `code` (the status
// name) and `status` (the HTTP status the same call would answer). The GIL is released
// while the engines run. Calls the HTTP layer audits are audited here with the same action,
// target and outcome (api/audit.h call_audit_entry), the actor being the constructor's.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/audit.h"
#include "api/keyring.h"
#include "api/http.h"
#include "api/server.h"
#include "experiments/service.h"
#include "optimization/automated_optimization.h"
#include "store/event_codec.h"

namespace py = pybind11;
using json = nlohmann::json;

namespace fulcrum::python {
namespace {

// Exception classes, created at import (see PYBIND11_MODULE).
struct Exceptions {
  py::object error, validation, not_found, conflict;
};
Exceptions& exceptions() {
  static Exceptions* classes = new Exceptions();  // lives as long as the interpreter
  return *classes;
}

[[noreturn]] void throw_status(const Status& status) {
  const Exceptions& classes = exceptions();
  py::object type = classes.error;
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      type = classes.validation;
      break;
    case StatusCode::kNotFound:
      type = classes.not_found;
      break;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      type = classes.conflict;
      break;
    default:
      break;
  }
  std::string message = status.message();
  if (!status.field().empty()) message = status.field() + ": " + message;
  py::object instance = type(message);
  instance.attr("field") = status.field();
  instance.attr("code") = status_code_name(status.code());
  instance.attr("status") = api::http_status_for(status);
  PyErr_SetObject(type.ptr(), instance.ptr());
  throw py::error_already_set();
}

template <typename T>
T value_or_raise(Result<T> result) {
  if (!result.is_ok()) throw_status(result.status());
  return std::move(result).value();
}

py::object to_python(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return py::none();
    case json::value_t::boolean:
      return py::bool_(value.get<bool>());
    case json::value_t::number_integer:
      return py::int_(value.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return py::int_(value.get<std::uint64_t>());
    case json::value_t::number_float:
      return py::float_(value.get<double>());
    case json::value_t::string:
      return py::str(value.get_ref<const std::string&>());
    case json::value_t::array: {
      py::list list;
      for (const json& item : value) list.append(to_python(item));
      return list;
    }
    case json::value_t::object: {
      py::dict dict;
      for (const auto& [key, item] : value.items()) dict[py::str(key)] = to_python(item);
      return dict;
    }
    default:
      return py::none();
  }
}

// Python values -> JSON. datetime (naive = UTC, as datetime.utcnow() gives) and date become
// ISO-8601 strings; `path` names the argument in errors.
json from_python(const py::handle& value, const std::string& path, int depth = 0) {
  if (depth > 64) throw_status(invalid_argument("nested too deeply", path));
  if (value.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(value)) return value.cast<bool>();
  if (py::isinstance<py::int_>(value)) return value.cast<std::int64_t>();
  if (py::isinstance<py::float_>(value)) return value.cast<double>();
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  py::module_ datetime = py::module_::import("datetime");
  if (py::isinstance(value, datetime.attr("datetime"))) {
    py::object moment = py::reinterpret_borrow<py::object>(value);
    if (!moment.attr("tzinfo").is_none()) {
      moment = moment.attr("astimezone")(datetime.attr("timezone").attr("utc"));
    }
    return moment.attr("strftime")("%Y-%m-%dT%H:%M:%SZ").cast<std::string>();
  }
  if (py::isinstance(value, datetime.attr("date"))) {
    return value.attr("strftime")("%Y-%m-%dT00:00:00Z").cast<std::string>();
  }
  if (py::isinstance<py::dict>(value)) {
    json object = json::object();
    for (const auto& [key, item] : value.cast<py::dict>()) {
      if (!py::isinstance<py::str>(key)) throw_status(invalid_argument("keys must be strings", path));
      const std::string name = key.cast<std::string>();
      object[name] = from_python(item, path.empty() ? name : path + "." + name, depth + 1);
    }
    return object;
  }
  if (py::isinstance<py::list>(value) || py::isinstance<py::tuple>(value)) {
    json array = json::array();
    std::size_t i = 0;
    for (const auto& item : value) {
      array.push_back(from_python(item, path + "[" + std::to_string(i++) + "]", depth + 1));
    }
    return array;
  }
  throw_status(invalid_argument(std::string("unsupported type ") + Py_TYPE(value.ptr())->tp_name, path));
}

// Runs `work` (which must not touch Python objects) with the GIL released.
template <typename F>
auto released(F&& work) {
  py::gil_scoped_release release;
  return work();
}

class PyAutomatedOptimization {
 public:
  PyAutomatedOptimization(const std::string& store_location, std::string actor,
                          const std::string& key_file)
      : actor_(std::move(actor)) {
    if (actor_.empty()) throw_status(invalid_argument("must not be empty", "actor"));
    Status failed = Status::ok();
    {
      py::gil_scoped_release release;
      failed = [&]() -> Status {
        auto opened = open_store(store_location);
        if (!opened.is_ok()) return opened.status();
        store_ = std::move(opened).value();
        // The same key file as `fulcrum serve` and the CLI: the audit chain is keyed by it.
        auto path = api::resolve_key_file(key_file, store_location);
        if (!path.is_ok()) return path.status();
        auto keyring = api::Keyring::open(*path, clock_, /*create=*/true);
        if (!keyring.is_ok()) return keyring.status();
        FULCRUM_RETURN_IF_ERROR(api::migrate_store_to_key_file(*store_, **keyring, clock_));
        audit_key_ = std::make_unique<api::AuditKey>((*keyring)->keys()->audit_secret);
        engines_ = std::make_unique<AutomatedOptimization>(*store_, clock_);
        return Status::ok();
      }();
    }
    if (!failed.is_ok()) throw_status(failed);
  }

  std::string create_ab_test(const py::kwargs& fields) {
    json request = from_python(fields, "");
    if (!request.contains("created_by") || request["created_by"].is_null()) {
      request["created_by"] = actor_;
    }
    auto created = released([&] { return engines_->create_ab_test(request); });
    audit("POST", "/ab-tests", created.is_ok() ? created->test_id : "", created.status());
    return value_or_raise(std::move(created)).test_id;
  }

  py::object lifecycle(const std::string& test_id, experiments::LifecycleAction action,
                       std::optional<std::string> winner = std::nullopt) {
    auto applied = released([&] {
      auto result = experiments::apply_lifecycle_action(engines_->store(), clock_, test_id,
                                                        action, winner);
      if (result.is_ok()) engines_->dashboard_changed(DashboardSection::kAbTests);
      return result;
    });
    audit("POST", std::string("/ab-tests/{test_id}/") + experiments::action_name(action), test_id,
          applied.status());
    return to_python(experiments::to_json(value_or_raise(std::move(applied))));
  }

  py::object get_ab_test(const std::string& test_id) {
    auto test = released([&] { return experiments::get_ab_test(engines_->store(), test_id); });
    return to_python(experiments::to_json(value_or_raise(std::move(test))));
  }

  py::object list_ab_tests(std::optional<std::string> status) {
    std::optional<experiments::ExperimentStatus> wanted;
    if (status) {
      wanted = experiments::parse_status(*status);
      if (!wanted) {
        throw_status(invalid_argument("must be draft, active, paused, completed or cancelled", "status"));
      }
    }
    auto tests = released([&] { return experiments::list_ab_tests(engines_->store(), wanted); });
    json items = json::array();
    for (const auto& test : value_or_raise(std::move(tests))) {
      items.push_back(experiments::to_json(test));
    }
    return to_python(items);
  }

  // As POST /ab-tests/{test_id}/assign: the decision, and the exposure stored in one
  // transaction with the audit entry.
  py::object assign_user(const std::string& test_id, const std::string& user_id,
                         const py::object& attributes) {
    std::optional<json> attribute_json;
    if (!attributes.is_none()) {
      if (!py::isinstance<py::dict>(attributes)) {
        throw_status(invalid_argument("must be a dict", "attributes"));
      }
      attribute_json = from_python(attributes, "attributes");
    }
    if (user_id.empty()) throw_status(invalid_argument("must not be empty", "user_id"));
    auto assigned = released([&]() -> Result<experiments::Assignment> {
      auto test = experiments::get_ab_test(engines_->store(), test_id);
      if (!test.is_ok()) return test.status();
      std::optional<ExposureEvent> exposure;
      auto assignment = experiments::plan_assignment(
          engines_->store(), *test, user_id, attribute_json ? &*attribute_json : nullptr,
          clock_.now(), exposure);
      if (!assignment.is_ok()) return assignment.status();
      std::vector<ExposureEvent> exposures;
      if (exposure) exposures.push_back(std::move(*exposure));
      std::vector<AuditEntry> entries = {
          entry("POST", "/ab-tests/{test_id}/assign", test_id + ":" + user_id, Status::ok())};
      auto stored = engines_->store().append_exposures_and_audit(exposures, std::move(entries),
                                                                 audit_key_->hasher());
      if (!stored.is_ok()) return stored.status();
      assignment->exposure_recorded = !exposures.empty();
      return assignment;
    });
    if (!assigned.is_ok()) {
      audit("POST", "/ab-tests/{test_id}/assign", test_id + ":" + user_id, assigned.status());
    }
    return to_python(experiments::to_json(value_or_raise(std::move(assigned))));
  }

  // The keyword options are the results route's query parameters.
  py::object analyze_ab_test_results(const std::string& test_id, std::optional<std::string> slice,
                                     std::size_t slice_top, bool post_stratify, bool cupac) {
    experiments::ResultsOptions options;
    options.slice = std::move(slice);
    options.slice_top = slice_top;
    options.post_stratify = post_stratify;
    options.cupac = cupac;
    auto results = released([&] { return engines_->analyze_ab_test_results(test_id, options); });
    return to_python(value_or_raise(std::move(results)));
  }

  py::object generate_feature_recommendations(const std::string& user_id) {
    auto recommendations =
        released([&] { return engines_->generate_feature_recommendations(user_id); });
    // Targets as the HTTP layer records them: "user:<id>", or the bare path parameter when
    // the call failed.
    audit("GET", "/feature-recommendations/{user_id}",
          recommendations.is_ok() ? "user:" + user_id : user_id, recommendations.status());
    return to_python(recommendations_to_json(value_or_raise(std::move(recommendations))));
  }

  py::object optimize_upgrade_timing(const std::string& user_id) {
    auto timing = released([&] { return engines_->optimize_upgrade_timing(user_id); });
    audit("GET", "/upgrade-timing/{user_id}", timing.is_ok() ? "user:" + user_id : user_id,
          timing.status());
    return to_python(value_or_raise(std::move(timing)).to_json());
  }

  py::object trigger_retention_campaigns() {
    auto created = released([&] { return engines_->trigger_retention_campaigns(); });
    const std::string target =
        created.is_ok() ? "campaigns:" + std::to_string(created->size()) : "";
    audit("POST", "/retention-campaigns/trigger", target, created.status());
    return campaigns_list(value_or_raise(std::move(created)));
  }

  py::object list_retention_campaigns(const std::string& status) {
    if (!status.empty() && status != "draft" && status != "active" && status != "completed") {
      throw_status(invalid_argument("must be draft, active or completed", "status"));
    }
    auto campaigns = released([&] { return engines_->list_retention_campaigns(status); });
    audit("GET", "/retention-campaigns", campaigns.is_ok() ? "retention-campaigns" : "",
          campaigns.status());
    return campaigns_list(value_or_raise(std::move(campaigns)));
  }

  py::object campaign_results(const std::string& campaign_id) {
    auto results = released(
        [&] { return fulcrum::campaign_results(engines_->store(), clock_, campaign_id); });
    return to_python(value_or_raise(std::move(results)).to_json());
  }

  py::object analyze_feature_sunset() {
    auto analyses = released([&] { return engines_->analyze_feature_sunset(); });
    return to_python(sunset_analyses_to_json(value_or_raise(std::move(analyses))));
  }

  py::object get_dashboard() {
    auto document = released([&] { return engines_->dashboard(); });
    return to_python(value_or_raise(std::move(document)));
  }

  // As POST /events: records of the ingestion format (docs/ingestion.md) as dicts, stored in
  // one transaction; any invalid record stores nothing unless skip_invalid.
  py::object ingest_events(const py::list& events, bool skip_invalid) {
    if (events.empty()) throw_status(invalid_argument("is empty", "events"));
    std::string lines;
    std::size_t i = 0;
    for (const auto& event : events) {
      if (!py::isinstance<py::dict>(event)) {
        throw_status(invalid_argument("must be a dict", "events[" + std::to_string(i) + "]"));
      }
      lines += from_python(event, "events[" + std::to_string(i) + "]").dump();
      lines += '\n';
      ++i;
    }
    const InvalidRecordPolicy policy =
        skip_invalid ? InvalidRecordPolicy::kSkipInvalid : InvalidRecordPolicy::kRejectChunk;
    json report;
    Status outcome = Status::ok();
    std::string target = "events";
    {
      py::gil_scoped_release release;
      auto chunk = decode_events(lines, EventFormat::kNdjson);
      if (!chunk.is_ok()) {
        outcome = chunk.status();
      } else if (!chunk->ok() && policy == InvalidRecordPolicy::kRejectChunk) {
        const RecordError& first = chunk->errors.front();
        const std::string location = "events[" + std::to_string(first.line - 1) + "]";
        outcome = invalid_argument(
            std::to_string(chunk->invalid_records) + " of " + std::to_string(chunk->records) +
                " records are invalid, nothing was stored; first: " + first.reason,
            first.field.empty() ? location : location + "." + first.field);
      } else {
        auto stored = ingest_chunk(engines_->store(), *chunk, policy);
        if (!stored.is_ok()) {
          outcome = stored.status();
        } else {
          json errors = json::array();
          for (const RecordError& error : chunk->errors) {
            errors.push_back({{"location", "events[" + std::to_string(error.line - 1) + "]"},
                              {"field", error.field},
                              {"reason", error.reason}});
          }
          report = {{"stored", stored->stored},
                    {"duplicates", stored->duplicates},
                    {"records", chunk->records},
                    {"invalid_records", chunk->invalid_records},
                    {"errors", errors}};
          target = "events:" + std::to_string(stored->stored);
        }
      }
    }
    audit("POST", "/events", target, outcome);
    if (!outcome.is_ok()) throw_status(outcome);
    return to_python(report);
  }

  const std::string& actor() const { return actor_; }

 private:
  AuditEntry entry(const char* method, const std::string& route, std::string target,
                   const Status& status) const {
    return api::call_audit_entry(clock_.now(), actor_, method, route, std::move(target),
                                 status.is_ok() ? 200 : api::http_status_for(status));
  }

  void audit(const char* method, const std::string& route, std::string target,
             const Status& status) {
    Result<AuditEntry> appended = released([&] {
      return api::append_audit(engines_->store(), *audit_key_,
                               entry(method, route, std::move(target), status));
    });
    if (!appended.is_ok()) throw_status(appended.status());
  }

  static py::object campaigns_list(const std::vector<RetentionCampaign>& campaigns) {
    json items = json::array();
    for (const RetentionCampaign& campaign : campaigns) items.push_back(campaign.to_json());
    return to_python(items);
  }

  std::string actor_;
  SystemClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<api::AuditKey> audit_key_;
  std::unique_ptr<AutomatedOptimization> engines_;
};

}  // namespace
}  // namespace fulcrum::python

PYBIND11_MODULE(fulcrum, module) {
  using fulcrum::python::PyAutomatedOptimization;
  namespace ex = fulcrum::experiments;
  module.doc() =
      "Fulcrum: A/B tests, feature recommendations, upgrade timing, retention campaigns and "
      "feature sunset analysis, in-process.";

  auto& classes = fulcrum::python::exceptions();
  auto make = [&](const char* name, py::tuple bases, const char* doc) {
    py::dict members;
    members["__doc__"] = doc;
    members["__module__"] = "fulcrum";
    members["field"] = "";
    members["code"] = "";
    members["status"] = 500;
    py::object type = py::reinterpret_steal<py::object>(
        PyObject_CallFunction(reinterpret_cast<PyObject*>(&PyType_Type), "sOO", name,
                              bases.ptr(), members.ptr()));
    if (!type) throw py::error_already_set();
    module.attr(name) = type;
    return type;
  };
  classes.error = make("Error", py::make_tuple(py::handle(PyExc_Exception)),
                       "A Fulcrum call failed. `field` names the input at fault (\"\" when "
                       "none), `code` the status, `status` the HTTP status of the same call.");
  classes.validation = make("ValidationError",
                            py::make_tuple(classes.error, py::handle(PyExc_ValueError)),
                            "Bad input; `field` names it.");
  classes.not_found = make("NotFoundError",
                           py::make_tuple(classes.error, py::handle(PyExc_LookupError)),
                           "No such test, user or campaign.");
  classes.conflict = make("ConflictError", py::make_tuple(classes.error),
                          "Not allowed in the current state (e.g. an illegal lifecycle "
                          "transition) or the id is taken.");

  py::class_<PyAutomatedOptimization>(module, "AutomatedOptimization")
      .def(py::init<const std::string&, std::string, const std::string&>(),
           py::arg("store") = "fulcrum.db", py::arg("actor") = "python", py::arg("key_file") = "",
           "Opens the store (SQLite file path or postgres:// URL). `actor` is recorded as the "
           "caller in the audit log and as created_by when a test does not name one. "
           "`key_file`: the key file (audit key; created on first use), default "
           "$FULCRUM_KEY_FILE, else '<sqlite file>.keys' (required for PostgreSQL).")
      .def_property_readonly("actor", &PyAutomatedOptimization::actor)
      .def("create_ab_test", &PyAutomatedOptimization::create_ab_test,
           "create_ab_test(test_name=..., feature_name=..., description=..., hypothesis=..., "
           "success_metrics=[...], test_groups={...}, traffic_allocation={...}, "
           "start_date=datetime, created_by=..., [test_id=..., metric_types=..., ...]) -> "
           "test_id. A draft test; fields as in the HTTP create request.")
      .def(
          "start_ab_test",
          [](PyAutomatedOptimization& self, const std::string& test_id) {
            return self.lifecycle(test_id, ex::LifecycleAction::kStart);
          },
          py::arg("test_id"))
      .def(
          "pause_ab_test",
          [](PyAutomatedOptimization& self, const std::string& test_id) {
            return self.lifecycle(test_id, ex::LifecycleAction::kPause);
          },
          py::arg("test_id"))
      .def(
          "resume_ab_test",
          [](PyAutomatedOptimization& self, const std::string& test_id) {
            return self.lifecycle(test_id, ex::LifecycleAction::kResume);
          },
          py::arg("test_id"))
      .def(
          "complete_ab_test",
          [](PyAutomatedOptimization& self, const std::string& test_id,
             std::optional<std::string> winner) {
            return self.lifecycle(test_id, ex::LifecycleAction::kComplete, std::move(winner));
          },
          py::arg("test_id"), py::arg("winner") = py::none())
      .def(
          "cancel_ab_test",
          [](PyAutomatedOptimization& self, const std::string& test_id) {
            return self.lifecycle(test_id, ex::LifecycleAction::kCancel);
          },
          py::arg("test_id"))
      .def("get_ab_test", &PyAutomatedOptimization::get_ab_test, py::arg("test_id"))
      .def("list_ab_tests", &PyAutomatedOptimization::list_ab_tests,
           py::arg("status") = py::none())
      .def("assign_user", &PyAutomatedOptimization::assign_user, py::arg("test_id"),
           py::arg("user_id"), py::arg("attributes") = py::none())
      .def("analyze_ab_test_results", &PyAutomatedOptimization::analyze_ab_test_results,
           py::arg("test_id"), py::kw_only(), py::arg("slice") = py::none(),
           py::arg("slice_top") = 5, py::arg("post_stratify") = false, py::arg("cupac") = false)
      .def("generate_feature_recommendations",
           &PyAutomatedOptimization::generate_feature_recommendations, py::arg("user_id"))
      .def("optimize_upgrade_timing", &PyAutomatedOptimization::optimize_upgrade_timing,
           py::arg("user_id"))
      .def("trigger_retention_campaigns", &PyAutomatedOptimization::trigger_retention_campaigns)
      .def("list_retention_campaigns", &PyAutomatedOptimization::list_retention_campaigns,
           py::arg("status") = "")
      .def("campaign_results", &PyAutomatedOptimization::campaign_results,
           py::arg("campaign_id"))
      .def("analyze_feature_sunset", &PyAutomatedOptimization::analyze_feature_sunset)
      .def("get_dashboard", &PyAutomatedOptimization::get_dashboard)
      .def("ingest_events", &PyAutomatedOptimization::ingest_events, py::arg("events"),
           py::arg("skip_invalid") = false);
}
