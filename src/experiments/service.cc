#include "experiments/service.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "assign/condition.h"
#include "core/ids.h"
#include "experiments/holdout.h"

namespace fulcrum::experiments {
namespace {

using json = nlohmann::json;

// Fields that decide who sees what; changing them mid-test would bias the comparison.
// A bandit's settings are frozen too: its weights history would not mean one thing.
const std::set<std::string> kFrozenFields = {
    "test_groups", "traffic_allocation", "coverage", "namespace", "targeting", "control", "bandit"};

Result<Experiment> load(Store& store, const std::string& test_id) {
  auto doc = store.get_document(kDocumentKind, test_id);
  if (!doc) return doc.status();
  if (!doc->has_value()) return not_found("no A/B test with id '" + test_id + "'");
  json body = json::parse((*doc)->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return internal_error("stored experiment " + test_id + " is not JSON");
  auto experiment = experiment_from_json(body);
  if (!experiment) return experiment.status();
  experiment->test_id = test_id;
  experiment->version = (*doc)->version;
  return experiment;
}


PhaseRecord phase_record(const Experiment& e) {
  PhaseRecord record;
  record.phase = e.phase;
  record.hash_seed = e.hash_seed;
  record.traffic_allocation = config_to_json(e.config)["traffic_allocation"];
  record.coverage = e.config.coverage;
  return record;
}

PhaseRecord& current_phase(Experiment& e) {
  if (e.phases.empty() || e.phases.back().phase != e.phase) e.phases.push_back(phase_record(e));
  return e.phases.back();
}

Result<ExperimentConfig> apply_patch(const ExperimentConfig& config, const json& patch) {
  if (!patch.is_object()) return invalid_argument("request body must be a JSON object");
  json merged = config_to_json(config);
  for (auto it = patch.begin(); it != patch.end(); ++it) merged[it.key()] = it.value();
  return parse_config(merged);
}

// A holdout the config newly opts into must exist and be running.
Status check_new_holdout(Store& store, const ExperimentConfig& before,
                         const ExperimentConfig& after) {
  if (after.holdout_id.empty() || after.holdout_id == before.holdout_id) return Status::ok();
  return check_holdout_opt_in(store, after.holdout_id, "holdout_id");
}

}  // namespace

Result<Experiment> create_ab_test_with_id(Store& store, const Clock& clock,
                                          const std::string& test_id, const json& request) {
  if (!is_valid_external_id(test_id)) {
    return invalid_argument("must be 1..128 characters of [A-Za-z0-9_.:@-]", "test_id");
  }
  auto config = parse_config(request);
  if (!config) return config.status();
  FULCRUM_RETURN_IF_ERROR(check_new_holdout(store, ExperimentConfig{}, *config));
  Experiment e;
  e.test_id = test_id;
  e.config = std::move(*config);
  e.hash_seed = test_id;
  e.created_at = e.updated_at = clock.now();
  e.phases.push_back(phase_record(e));
  FULCRUM_RETURN_IF_ERROR(save_ab_test(store, e));
  return e;
}

Result<Experiment> create_ab_test(Store& store, const Clock& clock, const json& request) {
  if (request.is_object() && request.contains("test_id")) {
    const json& chosen = request["test_id"];
    if (!chosen.is_string()) return invalid_argument("must be a string", "test_id");
    json config = request;
    config.erase("test_id");
    return create_ab_test_with_id(store, clock, chosen.get<std::string>(), config);
  }
  return create_ab_test_with_id(store, clock, new_id("test"), request);
}

Status save_ab_test(Store& store, Experiment& e) {
  Document doc;
  doc.id = e.test_id;
  doc.kind = kDocumentKind;
  doc.status = status_name(e.status);
  doc.created_at = e.created_at;
  doc.updated_at = e.updated_at;
  doc.version = e.version;
  json body = to_json(e);
  body.erase("version");  // the store owns the version
  doc.body = body.dump();
  auto version = store.put_document(doc);
  if (!version) return version.status();
  e.version = *version;
  return Status::ok();
}

Result<Experiment> get_ab_test(Store& store, const std::string& test_id) {
  return load(store, test_id);
}

Result<std::vector<Experiment>> list_ab_tests(Store& store,
                                              std::optional<ExperimentStatus> status) {
  auto docs = store.list_documents(kDocumentKind);
  if (!docs) return docs.status();
  std::vector<Experiment> out;
  for (const Document& doc : *docs) {
    if (status && doc.status != status_name(*status)) continue;
    json body = json::parse(doc.body, nullptr, false);
    if (body.is_discarded()) return internal_error("stored experiment " + doc.id + " is not JSON");
    auto e = experiment_from_json(body);
    if (!e) return e.status();
    e->test_id = doc.id;
    e->version = doc.version;
    out.push_back(std::move(*e));
  }
  std::stable_sort(out.begin(), out.end(), [](const Experiment& a, const Experiment& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.test_id < b.test_id;
  });
  return out;
}

Result<Experiment> apply_lifecycle_action(Store& store, const Clock& clock,
                                          const std::string& test_id, LifecycleAction action,
                                          std::optional<std::string> forced_winner) {
  auto loaded = load(store, test_id);
  if (!loaded) return loaded.status();
  Experiment e = std::move(*loaded);
  auto next = transition(e.status, action);
  if (!next) return next.status();
  if (forced_winner && action != LifecycleAction::kComplete) {
    return invalid_argument("a winner can only be given when completing", "winner");
  }
  const UnixSeconds now = clock.now();
  switch (action) {
    case LifecycleAction::kStart:
    case LifecycleAction::kResume:
      if (!e.started_at) e.started_at = now;
      if (!current_phase(e).started_at) current_phase(e).started_at = now;
      break;
    case LifecycleAction::kPause:
      break;
    case LifecycleAction::kComplete:
      if (forced_winner) {
        if (!e.config.find_group(*forced_winner)) {
          return invalid_argument("not one of test_groups", "winner");
        }
        e.winner = *forced_winner;
        e.winner_forced = true;
      } else if (auto results = analyze_ab_test_results(store, clock, test_id);
                 results && (*results)["winner"].is_string()) {
        e.winner = (*results)["winner"].get<std::string>();
      }
      [[fallthrough]];
    case LifecycleAction::kCancel:
      e.ended_at = now;
      current_phase(e).ended_at = now;
      break;
  }
  e.status = *next;
  e.updated_at = now;
  FULCRUM_RETURN_IF_ERROR(save_ab_test(store, e));
  return e;
}

Result<Experiment> start_ab_test(Store& store, const Clock& clock, const std::string& test_id) {
  return apply_lifecycle_action(store, clock, test_id, LifecycleAction::kStart);
}
Result<Experiment> pause_ab_test(Store& store, const Clock& clock, const std::string& test_id) {
  return apply_lifecycle_action(store, clock, test_id, LifecycleAction::kPause);
}
Result<Experiment> resume_ab_test(Store& store, const Clock& clock, const std::string& test_id) {
  return apply_lifecycle_action(store, clock, test_id, LifecycleAction::kResume);
}
Result<Experiment> complete_ab_test(Store& store, const Clock& clock, const std::string& test_id,
                                    std::optional<std::string> forced_winner) {
  return apply_lifecycle_action(store, clock, test_id, LifecycleAction::kComplete,
                                std::move(forced_winner));
}
Result<Experiment> cancel_ab_test(Store& store, const Clock& clock, const std::string& test_id) {
  return apply_lifecycle_action(store, clock, test_id, LifecycleAction::kCancel);
}

Result<Experiment> update_ab_test(Store& store, const Clock& clock, const std::string& test_id,
                                  const json& patch) {
  auto loaded = load(store, test_id);
  if (!loaded) return loaded.status();
  Experiment e = std::move(*loaded);
  if (e.status == ExperimentStatus::kCompleted || e.status == ExperimentStatus::kCancelled) {
    return failed_precondition(std::string("the test is ") + status_name(e.status) +
                               " and can no longer be changed");
  }
  auto config = apply_patch(e.config, patch);
  if (!config) return config.status();
  if (e.status != ExperimentStatus::kDraft && config->holdout_id != e.config.holdout_id) {
    // Joining or leaving a holdout mid-phase would take users out of (or put them back
    // into) the comparison after they were exposed; a new phase reshuffles anyway.
    return invalid_argument(std::string("cannot change while the test is ") +
                                status_name(e.status) + "; start a new phase to change it",
                            "holdout_id");
  }
  FULCRUM_RETURN_IF_ERROR(check_new_holdout(store, e.config, *config));
  if (e.status != ExperimentStatus::kDraft) {
    const json before = config_to_json(e.config), after = config_to_json(*config);
    for (const std::string& field : kFrozenFields) {
      // value(): "bandit" is absent from the JSON of a test without one.
      if (before.value(field, json()) != after.value(field, json())) {
        return failed_precondition("'" + field + "' is frozen once the test has started (" +
                                   status_name(e.status) +
                                   "); start a new phase to change groups, weights, coverage "
                                   "or targeting (users will be reshuffled)");
      }
    }
  }
  e.config = std::move(*config);
  if (e.status == ExperimentStatus::kDraft) e.phases = {phase_record(e)};
  e.updated_at = clock.now();
  FULCRUM_RETURN_IF_ERROR(save_ab_test(store, e));
  return e;
}

Result<Experiment> new_phase(Store& store, const Clock& clock, const std::string& test_id,
                             const json& patch) {
  auto loaded = load(store, test_id);
  if (!loaded) return loaded.status();
  Experiment e = std::move(*loaded);
  if (e.status != ExperimentStatus::kActive && e.status != ExperimentStatus::kPaused) {
    return failed_precondition(std::string("cannot start a new phase of a test that is ") +
                               status_name(e.status) + "; only active or paused tests have phases");
  }
  auto config = apply_patch(e.config, patch);
  if (!config) return config.status();
  FULCRUM_RETURN_IF_ERROR(check_new_holdout(store, e.config, *config));
  const UnixSeconds now = clock.now();
  current_phase(e).ended_at = now;
  e.config = std::move(*config);
  e.phase += 1;
  e.hash_seed = test_id + ":phase" + std::to_string(e.phase);
  // A new phase reshuffles users, so a bandit starts over from the configured weights.
  e.bandit_weights.clear();
  e.bandit_weights_at.reset();
  e.bandit_period = -1;
  PhaseRecord& record = current_phase(e);
  record.started_at = now;
  e.updated_at = now;
  FULCRUM_RETURN_IF_ERROR(save_ab_test(store, e));
  return e;
}

Result<CoverageUpdate> set_coverage(Store& store, const Clock& clock, const std::string& test_id,
                                    double coverage, const std::string& changed_by,
                                    std::optional<std::int64_t> expected_version) {
  if (!std::isfinite(coverage) || coverage <= 0 || coverage > 1) {
    return invalid_argument("coverage must be a number in (0, 1]", "coverage");
  }
  auto loaded = load(store, test_id);
  if (!loaded) return loaded.status();
  Experiment e = std::move(*loaded);
  if (e.status == ExperimentStatus::kCompleted || e.status == ExperimentStatus::kCancelled) {
    return failed_precondition(std::string("the test is ") + status_name(e.status) +
                               "; its coverage can no longer change");
  }
  if (expected_version && *expected_version != e.version) {
    return failed_precondition("the test changed meanwhile (version " +
                               std::to_string(e.version) + ", expected " +
                               std::to_string(*expected_version) + ")");
  }
  CoverageUpdate update;
  update.previous_coverage = e.config.coverage;
  const UnixSeconds now = clock.now();
  e.config.coverage = coverage;
  PhaseRecord& record = current_phase(e);
  record.coverage = coverage;
  if (e.status == ExperimentStatus::kDraft) {
    e.phases = {phase_record(e)};  // nobody was assigned yet: nothing to record
  } else {
    record.coverage_changes.push_back({now, update.previous_coverage, coverage, changed_by});
  }
  e.updated_at = now;
  FULCRUM_RETURN_IF_ERROR(save_ab_test(store, e));
  update.experiment = std::move(e);
  return update;
}

json user_attributes(const User& user) {
  json attributes = json::object();
  for (const auto& [key, value] : user.attributes) attributes[key] = value;
  attributes["id"] = user.user_id;
  attributes["user_id"] = user.user_id;
  attributes["tier"] = tier_name(user.tier);
  if (!user.country.empty()) attributes["country"] = user.country;
  if (!user.app_version.empty()) attributes["app_version"] = user.app_version;
  attributes["signup_at"] = format_iso8601(user.signup_at);
  return attributes;
}

json to_json(const Assignment& a) {
  json out = {{"test_id", a.test_id},
              {"user_id", a.user_id},
              {"in_experiment", a.in_experiment},
              {"variant", a.variant ? json(*a.variant) : json(nullptr)},
              {"config", a.config},
              {"reason", a.reason},
              {"phase", a.phase},
              {"bucket", a.bucket},
              {"sticky", a.sticky},
              {"exposure_recorded", a.exposure_recorded}};
  if (a.held_out) out["held_out"] = true;
  return out;
}

Result<Assignment> assign_user(Store& store, const Clock& clock, const std::string& test_id,
                               const std::string& user_id, const json* attributes) {
  if (user_id.empty()) return invalid_argument("must not be empty", "user_id");
  auto loaded = load(store, test_id);
  if (!loaded) return loaded.status();
  std::optional<ExposureEvent> exposure;
  auto a = plan_assignment(store, *loaded, user_id, attributes, clock.now(), exposure);
  if (!a) return a.status();
  if (exposure) {
    // As the server's group commit does: an assignment's exposure is stored once per
    // (experiment, user, variant), however often the user is assigned.
    auto stored = store.append_exposures_and_audit({std::move(*exposure)}, {}, {});
    if (!stored.is_ok()) return stored.status();
    a->exposure_recorded = true;
  }
  return a;
}

Result<Assignment> plan_assignment(Store& store, const Experiment& e, const std::string& user_id,
                                   const json* attributes, UnixSeconds now,
                                   std::optional<ExposureEvent>& exposure) {
  exposure.reset();
  if (user_id.empty()) return invalid_argument("must not be empty", "user_id");
  const std::string& test_id = e.test_id;
  Assignment a;
  a.test_id = test_id;
  a.user_id = user_id;
  a.phase = e.phase;
  a.config = nullptr;
  if (!e.config.holdout_id.empty() &&
      (e.status == ExperimentStatus::kActive || e.status == ExperimentStatus::kCompleted)) {
    // The holdout's users see neither the test nor what it shipped (the payload's holdout
    // rule comes before the test's rule, with the same hash).
    auto holdout = get_holdout(store, e.config.holdout_id);
    if (!holdout.is_ok() && holdout.status().code() != StatusCode::kNotFound) {
      return holdout.status();
    }
    if (holdout.is_ok()) {
      // The user id is the "id" attribute of /assign; other attributes come from the
      // request, else from the stored user.
      json stored;
      const json* seen = attributes;
      if (holdout->hash_attribute == "id") {
        stored = {{"id", user_id}};
        seen = &stored;
      } else if (seen == nullptr) {
        auto user = store.get_user(user_id);
        if (!user) return user.status();
        stored = user->has_value() ? user_attributes(**user) : json{{"id", user_id}};
        seen = &stored;
      }
      if (holdout->holds_out(*seen)) {
        a.reason = "holdout";
        a.held_out = true;
        return a;
      }
    }
  }
  if (e.status == ExperimentStatus::kCompleted) {
    // Roll out the decision: everyone gets the winner (control when there is none).
    a.variant = e.winner.value_or(e.config.control);
    a.config = e.config.find_group(*a.variant)->config;
    a.reason = "completed";
    return a;
  }
  if (e.status != ExperimentStatus::kActive) {
    a.reason = "not_active";
    return a;
  }
  if (!e.config.targeting.empty()) {
    json stored;
    if (attributes == nullptr) {
      auto user = store.get_user(user_id);
      if (!user) return user.status();
      stored = user->has_value() ? user_attributes(**user) : json{{"id", user_id}};
      attributes = &stored;
    }
    if (!attributes->is_object()) return invalid_argument("must be a JSON object", "attributes");
    if (!assign::eval_condition(*attributes, e.config.targeting)) {
      a.reason = "targeting";
      return a;
    }
  }
  if (e.config.ns && !assign::in_namespace(user_id, *e.config.ns)) {
    a.reason = "namespace";
    return a;
  }
  auto assigner = assign::Assigner::create(e.hash_seed, e.current_allocation());
  if (!assigner) return assigner.status();
  a.bucket = assigner->bucket(user_id);
  if (e.config.bandit.enabled) {
    // Sticky by phase (GrowthBook's sticky bucketing with bucketVersion = phase): a user
    // exposed in this phase keeps that variant whatever the weights are now; new users are
    // bucketed with the current weights.
    auto first = store.first_exposure_variant(e.exposure_key(), user_id);
    if (!first) return first.status();
    if (first->has_value()) {
      if (const GroupSpec* group = e.config.find_group(**first)) {
        a.in_experiment = true;
        a.variant = group->name;
        a.config = group->config;
        a.reason = "assigned";
        a.sticky = true;
        exposure = ExposureEvent{e.exposure_key(), user_id, group->name, now};
        return a;
      }
    }
  }
  const int index = assigner->assign(user_id);
  if (index < 0) {
    a.reason = "coverage";
    return a;
  }
  const GroupSpec& group = e.config.groups[static_cast<std::size_t>(index)];
  a.in_experiment = true;
  a.variant = group.name;
  a.config = group.config;
  a.reason = "assigned";
  exposure = ExposureEvent{e.exposure_key(), user_id, group.name, now};
  return a;
}

}  // namespace fulcrum::experiments
