#include "automation/jobs.h"

#include <algorithm>
#include <cmath>

#include "automation/webhooks.h"
#include "experiments/bandit.h"
#include "experiments/service.h"
#include "lifecycle/churn_model.h"
#include "optimization/automated_optimization.h"

namespace fulcrum::automation {

using nlohmann::json;

namespace {

std::string phase_key(const experiments::Experiment& e) {
  return e.test_id + ":p" + std::to_string(e.phase);
}

}  // namespace

Result<ExperimentPolicy> get_policy(Store& store, const std::string& test_id) {
  auto doc = store.get_document(kPolicyKind, test_id);
  if (!doc.is_ok()) return doc.status();
  if (!*doc) return not_found("A/B test " + test_id + " has no automation policy");
  auto policy = parse_policy(json::parse((*doc)->body, nullptr, false));
  if (!policy.is_ok()) return internal_error("stored policy of " + test_id + " is invalid");
  return policy;
}

Result<ExperimentPolicy> put_policy(Store& store, const Clock& clock, const std::string& test_id,
                                    const json& body) {
  auto test = experiments::get_ab_test(store, test_id);
  if (!test.is_ok()) return test.status();
  if (body.is_object() && body.contains("ramp_state")) {
    return invalid_argument("ramp_state is kept by the experiment_policies job", "ramp_state");
  }
  auto policy = parse_policy(body);
  if (!policy.is_ok()) return policy.status();
  return store_policy(store, clock, *test, std::move(*policy), body.contains("overrides"));
}

Result<ExperimentPolicy> store_policy(Store& store, const Clock& clock,
                                      const experiments::Experiment& test,
                                      ExperimentPolicy policy, bool overrides_given) {
  const std::string& test_id = test.test_id;
  for (std::size_t i = 0; i < policy.guardrail_metrics.size(); ++i) {
    const std::string& metric = policy.guardrail_metrics[i];
    bool known = false;
    for (const auto& spec : test.config.success_metrics) known = known || spec.name == metric;
    if (!known) {
      return invalid_argument("not one of the test's success_metrics",
                              "guardrail_metrics[" + std::to_string(i) + "]");
    }
  }
  auto current = store.get_document(kPolicyKind, test_id);
  if (!current.is_ok()) return current.status();
  if (*current) {
    auto old = parse_policy(json::parse((*current)->body, nullptr, false));
    if (old.is_ok()) {
      if (!overrides_given) policy.overrides = old->overrides;  // overrides survive an edit
      // The ramp's progress survives an edit that keeps its steps; new steps start afresh.
      if (!policy.ramp_state && policy.ramp && old->ramp &&
          old->ramp->steps == policy.ramp->steps) {
        policy.ramp_state = old->ramp_state;
      }
    }
  }
  Document doc;
  doc.kind = kPolicyKind;
  doc.id = test_id;
  doc.status = policy.enabled ? "enabled" : "disabled";
  doc.body = policy.to_json().dump();
  doc.updated_at = clock.now();
  doc.created_at = *current ? (*current)->created_at : doc.updated_at;
  doc.version = *current ? (*current)->version : 0;
  auto put = store.put_document(doc);
  if (!put.is_ok()) return put.status();
  return policy;
}

Result<ExperimentPolicy> override_policy(Store& store, const Clock& clock,
                                         const std::string& test_id, const std::string& check,
                                         bool resume) {
  const auto& checks = health_checks();
  if (std::find(checks.begin(), checks.end(), check) == checks.end()) {
    return invalid_argument("unknown check (srm, multi_variant_users, sample_size_reached, "
                            "guardrail_harm, decisive)",
                            "check");
  }
  auto test = experiments::get_ab_test(store, test_id);
  if (!test.is_ok()) return test.status();
  auto policy = get_policy(store, test_id);
  if (!policy.is_ok()) return policy.status();
  if (!policy->overridden(test->phase, check)) policy->overrides.push_back({test->phase, check});
  // Overriding the harm check releases a ramp the harm held: it moves on from its current
  // step, which starts now.
  if (resume && check == "guardrail_harm" && policy->ramp_state &&
      policy->ramp_state->phase == test->phase && policy->ramp_state->status == "rolled_back") {
    policy->ramp_state->status =
        policy->ramp && policy->ramp_state->step + 1 >= static_cast<int>(policy->ramp->steps.size())
            ? "done"
            : "ramping";
    policy->ramp_state->step_started_at = clock.now();
  }
  auto stored = store_policy(store, clock, *test, *policy, /*overrides_given=*/true);
  if (!stored.is_ok()) return stored.status();
  if (resume && test->status == experiments::ExperimentStatus::kPaused) {
    auto resumed = experiments::resume_ab_test(store, clock, test_id);
    if (!resumed.is_ok()) return resumed.status();
  }
  return stored;
}

Result<json> run_experiment_health(Store& store, const Clock& clock, const JobContext& context) {
  auto tests = experiments::list_ab_tests(store, experiments::ExperimentStatus::kActive);
  if (!tests.is_ok()) return tests.status();
  json alerts = json::array();
  int checked = 0;
  for (const auto& test : *tests) {
    if (context.expired()) break;
    auto results = experiments::analyze_ab_test_results(store, clock, test.test_id);
    if (!results.is_ok()) continue;  // e.g. no exposures yet
    ++checked;
    std::vector<std::string> guardrails;
    if (auto policy = get_policy(store, test.test_id); policy.is_ok()) {
      guardrails = policy->guardrail_metrics;
    }
    for (const HealthFinding& finding :
         health_findings(*results, guardrails, test.config.min_sample_size)) {
      if (finding.check == "decisive") continue;  // good news is the policy's business
      auto raised = raise_event(store, clock, "health:" + phase_key(test) + ":" + finding.check,
                                "health.alert", test.test_id,
                                "A/B test " + test.config.test_name + ": " + finding.summary,
                                {{"test_id", test.test_id},
                                 {"test_name", test.config.test_name},
                                 {"phase", test.phase},
                                 {"check", finding.check},
                                 {"evidence", finding.evidence}});
      if (!raised.is_ok()) return raised.status();
      if (*raised) alerts.push_back({{"test_id", test.test_id}, {"check", finding.check}});
    }
  }
  return json{{"active_tests", tests->size()}, {"checked", checked}, {"new_alerts", alerts}};
}

namespace {

constexpr const char* kPolicyActor = "automation:experiment_policies";

// Replaces the stored policy's ramp_state (at the stored version: an admin's edit meanwhile
// makes this write fail instead of being overwritten).
Status save_ramp_state(Store& store, const Clock& clock, const std::string& test_id,
                       const RampState& state) {
  auto doc = store.get_document(kPolicyKind, test_id);
  if (!doc.is_ok()) return doc.status();
  if (!*doc) return not_found("the policy of " + test_id + " was removed");
  auto policy = parse_policy(json::parse((*doc)->body, nullptr, false));
  if (!policy.is_ok()) return internal_error("stored policy of " + test_id + " is invalid");
  policy->ramp_state = state;
  Document updated = **doc;
  updated.body = policy->to_json().dump();
  updated.updated_at = clock.now();
  auto put = store.put_document(updated);
  return put.is_ok() ? Status::ok() : put.status();
}

std::string share_text(double share) { return json(share).dump(); }

}  // namespace

Result<json> apply_ramp(Store& store, const Clock& clock, const AuditSink& audit,
                        const ExperimentPolicy& policy, const experiments::Experiment& test,
                        const json& results, const std::vector<HealthFinding>& findings,
                        bool safety_clear) {
  const auto& exposures = results.value("total_exposures", json(0));
  const std::int64_t exposed = exposures.is_number() ? exposures.get<std::int64_t>() : 0;
  const RampDecision ramp = decide_ramp(policy, test.phase, test.config.coverage, exposed,
                                        clock.now(), findings, safety_clear);
  if (ramp.move == RampMove::kNone) return json(nullptr);
  // Act on the test first, then record the ramp's progress: a crash in between repeats the
  // (idempotent) coverage change rather than skipping it.
  if (ramp.move == RampMove::kPause) {
    auto paused = experiments::pause_ab_test(store, clock, test.test_id);
    if (!paused.is_ok()) {
      if (paused.status().code() == StatusCode::kFailedPrecondition) return json(nullptr);
      return paused.status();
    }
  } else if (std::fabs(ramp.to - ramp.from) > 1e-12) {
    auto changed = experiments::set_coverage(store, clock, test.test_id, ramp.to, kPolicyActor,
                                             test.version);
    if (!changed.is_ok()) {
      // Someone changed the test meanwhile (409): the next run looks again.
      if (changed.status().code() == StatusCode::kFailedPrecondition) return json(nullptr);
      return changed.status();
    }
  }
  Status saved = save_ramp_state(store, clock, test.test_id, ramp.next);
  if (!saved.is_ok() && saved.code() != StatusCode::kFailedPrecondition) return saved;
  const std::string move = ramp_move_name(ramp.move);
  json data = {{"test_id", test.test_id},
               {"test_name", test.config.test_name},
               {"phase", test.phase},
               {"check", ramp.move == RampMove::kRollback || ramp.move == RampMove::kPause
                             ? "guardrail_harm"
                             : "ramp"},
               {"action", ramp.move == RampMove::kPause ? "pause" : "ramp_" + move},
               {"coverage_from", ramp.from},
               {"coverage_to", ramp.to},
               {"ramp_state", ramp.next.to_json()},
               {"evidence", ramp.evidence}};
  std::string outcome = "ok: ramp " + move + ": coverage " + share_text(ramp.from) + " -> " +
                        share_text(ramp.to) + "; " + ramp.summary;
  if (ramp.move == RampMove::kRollback || ramp.move == RampMove::kPause) {
    const std::string event_id = "policy:" + phase_key(test) + ":ramp_rollback:step" +
                                 std::to_string(policy.ramp_state && policy.ramp_state->phase ==
                                                                         test.phase
                                                    ? policy.ramp_state->step
                                                    : ramp.next.step);
    auto raised = raise_event(store, clock, event_id, "health.alert", test.test_id,
                              "A/B test " + test.config.test_name + ": " + ramp.summary, data);
    if (!raised.is_ok()) return raised.status();
    outcome += " (evidence: automation_event " + event_id + ")";
  }
  if (audit) {
    AuditEntry entry;
    entry.at = clock.now();
    entry.actor = kPolicyActor;
    entry.action = ramp.move == RampMove::kPause ? "policy.pause" : "policy.ramp_" + move;
    entry.target = test.test_id;
    entry.outcome = std::move(outcome);
    FULCRUM_RETURN_IF_ERROR(audit(std::move(entry)));
  }
  return data;
}

Result<json> run_experiment_policies(Store& store, const Clock& clock, const AuditSink& audit,
                                     const JobContext& context) {
  auto policies = store.list_documents(kPolicyKind);
  if (!policies.is_ok()) return policies.status();
  json actions = json::array();
  int evaluated = 0;
  for (const Document& doc : *policies) {
    if (context.expired()) break;
    auto policy = parse_policy(json::parse(doc.body, nullptr, false));
    if (!policy.is_ok() || !policy->enabled) continue;
    auto test = experiments::get_ab_test(store, doc.id);
    if (!test.is_ok() || test->status != experiments::ExperimentStatus::kActive) continue;
    auto results = experiments::analyze_ab_test_results(store, clock, test->test_id);
    if (!results.is_ok()) continue;
    ++evaluated;
    const auto findings =
        health_findings(*results, policy->guardrail_metrics, test->config.min_sample_size);
    const PolicyDecision decision = decide_policy(*policy, test->phase, findings);
    if (policy->ramp) {
      auto ramped = apply_ramp(store, clock, audit, *policy, *test, *results, findings,
                               decision.action == PolicyAction::kNone);
      if (!ramped.is_ok()) return ramped.status();
      if (!ramped->is_null()) {
        actions.push_back(*ramped);
        // A rollback or pause settles this run; a step up leaves other actions to the next.
        continue;
      }
    }
    if (decision.action == PolicyAction::kNone) continue;
    Result<experiments::Experiment> acted =
        decision.action == PolicyAction::kPause
            ? experiments::pause_ab_test(store, clock, test->test_id)
            : experiments::complete_ab_test(store, clock, test->test_id);
    if (!acted.is_ok()) {
      // Someone changed the test meanwhile (409): the next run looks again.
      if (acted.status().code() == StatusCode::kFailedPrecondition) continue;
      return acted.status();
    }
    const std::string action = policy_action_name(decision.action);
    const std::string event_id = "policy:" + phase_key(*test) + ":" + decision.check;
    json data = {{"test_id", test->test_id},
                 {"test_name", test->config.test_name},
                 {"phase", test->phase},
                 {"check", decision.check},
                 {"action", action},
                 {"winner", acted->winner ? json(*acted->winner) : json(nullptr)},
                 {"evidence", decision.evidence}};
    auto raised = raise_event(store, clock, event_id, "health.alert", test->test_id,
                              "A/B test " + test->config.test_name + " " +
                                  (decision.action == PolicyAction::kPause ? "paused" : "completed") +
                                  " automatically: " + decision.summary,
                              data);
    if (!raised.is_ok()) return raised.status();
    if (audit) {
      AuditEntry entry;
      entry.at = clock.now();
      entry.actor = kPolicyActor;
      entry.action = "policy." + action;
      entry.target = test->test_id;
      entry.outcome = "ok: " + decision.check + " (evidence: automation_event " + event_id + ")";
      FULCRUM_RETURN_IF_ERROR(audit(std::move(entry)));
    }
    actions.push_back(data);
  }
  return json{{"policies", policies->size()}, {"evaluated", evaluated}, {"actions", actions}};
}

Result<json> run_change_feed_pruning(Store& store, const Clock& clock, UnixSeconds retention,
                                     const JobContext& context, std::size_t batch) {
  // Short write transactions beside the live traffic.
  const std::size_t kBatch = batch == 0 ? 1 : batch;
  const UnixSeconds before = clock.now() - retention;
  std::int64_t deleted = 0;
  int batches = 0;
  bool finished = false;
  while (!context.expired()) {
    auto pruned = store.prune_document_changes(before, kBatch);
    if (!pruned.is_ok()) return pruned.status();
    deleted += *pruned;
    ++batches;
    if (*pruned < static_cast<std::int64_t>(kBatch)) {
      finished = true;
      break;
    }
  }
  return json{{"deleted", deleted},
              {"batches", batches},
              {"older_than", format_iso8601(before)},
              {"retention_days", static_cast<double>(retention) / kSecondsPerDay},
              {"finished", finished}};
}

Result<json> run_sunset_review(AutomatedOptimization& optimization, Store& store,
                               const Clock& clock, const JobContext& context) {
  auto analyses = optimization.analyze_feature_sunset();
  if (!analyses.is_ok()) return analyses.status();
  json changed = json::array();
  for (const auto& analysis : *analyses) {
    auto current = store.get_document("sunset_review", analysis.feature_name);
    if (!current.is_ok()) return current.status();
    std::string previous;
    if (*current) previous = (*current)->status;
    if (previous == analysis.sunset_recommendation) continue;
    Document doc;
    doc.kind = "sunset_review";
    doc.id = analysis.feature_name;
    doc.status = analysis.sunset_recommendation;
    doc.body = json{{"feature", analysis.feature_name},
                    {"recommendation", analysis.sunset_recommendation},
                    {"previous_recommendation", previous.empty() ? json(nullptr) : json(previous)},
                    {"reasons", analysis.reasons},
                    {"sunset_id", analysis.sunset_id},
                    {"period", context.period}}
                   .dump();
    doc.updated_at = clock.now();
    doc.created_at = *current ? (*current)->created_at : doc.updated_at;
    doc.version = *current ? (*current)->version : 0;
    auto put = store.put_document(doc);
    if (!put.is_ok()) return put.status();
    changed.push_back({{"feature", analysis.feature_name},
                       {"from", previous},
                       {"to", analysis.sunset_recommendation}});
  }
  return json{{"features", analyses->size()}, {"changed", changed}};
}

std::vector<JobDefinition> builtin_jobs(JobEnvironment env) {
  std::vector<JobDefinition> jobs;
  jobs.push_back({{"retention_triggers", "0 6 * * *", "UTC", true, 1800,
                   "Run the five retention triggers and store the new campaigns"},
                  [env](JobContext&) -> Result<json> {
                    auto created = env.optimization.trigger_retention_campaigns();
                    if (!created.is_ok()) return created.status();
                    json campaigns = json::array();
                    std::size_t users = 0;
                    for (const auto& c : *created) {
                      campaigns.push_back(c.campaign_id);
                      users += c.target_users.size();
                    }
                    return json{{"campaigns_created", created->size()},
                                {"campaign_ids", campaigns},
                                {"target_users", users}};
                  }});
  jobs.push_back({{"model_retraining", "0 4 * * *", "UTC", true, 3600,
                   "Retrain the recommendation, upgrade-timing and churn models"},
                  [env](JobContext& context) -> Result<json> {
                    const UnixSeconds now = env.clock.now();
                    json detail = json::object();
                    // Retrained here and stored: the other replicas load these models
                    // (core/stored_model.h) at their next recheck instead of training.
                    auto& recommendations = env.optimization.recommendation_service();
                    FULCRUM_RETURN_IF_ERROR(recommendations.refresh(env.store, now));
                    detail["recommendations"] = to_json(*recommendations.served());
                    if (context.expired()) return detail;
                    auto& upgrade_timing = env.optimization.upgrade_timing_service();
                    FULCRUM_RETURN_IF_ERROR(upgrade_timing.refresh(env.store, now));
                    detail["upgrade_timing"] = to_json(*upgrade_timing.served());
                    if (context.expired()) return detail;
                    auto churn = evaluate_churn_model(env.store, env.clock,
                                                      env.optimization.options().retention.triggers.churn);
                    if (churn.is_ok()) {
                      detail["churn"] = {{"test_auc", std::isfinite(churn->test_auc)
                                                          ? json(churn->test_auc)
                                                          : json(nullptr)},
                                         {"train_rows", churn->train_rows}};
                    } else {
                      detail["churn"] = {{"skipped", churn.status().message()}};
                    }
                    return detail;
                  }});
  jobs.push_back({{"experiment_health", "0 * * * *", "UTC", true, 900,
                   "Check every active A/B test: SRM, users in several variants, guardrail "
                   "harm, planned sample reached"},
                  [env](JobContext& context) {
                    return run_experiment_health(env.store, env.clock, context);
                  }});
  jobs.push_back({{"experiment_policies", "*/15 * * * *", "UTC", true, 900,
                   "Apply opt-in A/B test policies (pause on SRM or guardrail harm, complete "
                   "when decisive)"},
                  [env](JobContext& context) {
                    return run_experiment_policies(env.store, env.clock, env.audit, context);
                  }});
  jobs.push_back({{"bandit_weights", "*/15 * * * *", "UTC", true, 900,
                   "Recompute the traffic weights of bandit A/B tests whose recompute period "
                   "has come (Thompson sampling on the primary metric)"},
                  [env](JobContext&) {
                    return experiments::run_bandit_recomputation(env.store, env.clock);
                  }});
  jobs.push_back({{"sunset_review", "0 7 * * 1", "UTC", true, 1800,
                   "Review feature sunset recommendations and announce changes"},
                  [env](JobContext& context) {
                    return run_sunset_review(env.optimization, env.store, env.clock, context);
                  }});
  jobs.push_back({{"change_feed_pruning", "30 3 * * *", "UTC", true, 900,
                   "Delete fanned-out change-feed rows older than the retention"},
                  [env](JobContext& context) {
                    return run_change_feed_pruning(env.store, env.clock,
                                                   env.change_feed_retention, context);
                  }});
  return jobs;
}

}  // namespace fulcrum::automation
