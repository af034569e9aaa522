// The built-in jobs of `fulcrum serve` and the experiment policy store. Each job is a
// JobFunction (scheduler.h) over the engines:
//   retention_triggers   daily 06:00   the five retention triggers -> new campaigns (users in
//                                      their cooldown are not targeted again, so a second
//                                      run the same day creates nothing new)
//   model_retraining     daily 04:00   recommendation and upgrade-timing models retrained
//                                      and swapped in; the churn model refit and evaluated
//   experiment_health    hourly        health checks (policy.h) of every active test; each
//                                      finding raises one "health.alert" per test phase
//   experiment_policies  every 15 min  opt-in policies act on the findings: pause (SRM,
//                                      guardrail harm) or complete with the winner; every
//                                      action is audited and raises a "health.alert" with
//                                      its evidence
//   bandit_weights       every 15 min  bandit A/B tests whose recompute period has come get
//                                      new weights and a weights-history entry
//                                      (experiments/bandit.h; idempotent per period)
//   sunset_review        weekly Mon    sunset analysis; a changed recommendation per feature
//                                      is stored (document "sunset_review") and announced
//   change_feed_pruning  daily 03:30   deletes change-feed rows (document_changes) that were
//                                      fanned out and are older than the retention (7 days)
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "automation/policy.h"
#include "automation/scheduler.h"
#include "experiments/experiment.h"
#include "store/store.h"

namespace fulcrum {
class AutomatedOptimization;
}

namespace fulcrum::automation {

// Appends an audit entry (the server passes api::append_audit; the hash chain is the
// caller's concern).
using AuditSink = std::function<Status(AuditEntry entry)>;

struct JobEnvironment {
  Store& store;
  const Clock& clock;
  AutomatedOptimization& optimization;
  AuditSink audit;
  // How long fanned-out change-feed rows are kept (change_feed_pruning).
  UnixSeconds change_feed_retention = 7 * kSecondsPerDay;
};

std::vector<JobDefinition> builtin_jobs(JobEnvironment environment);

// The job bodies, callable directly (tests, `fulcrum jobs run`).
Result<nlohmann::json> run_experiment_health(Store& store, const Clock& clock,
                                             const JobContext& context);
Result<nlohmann::json> run_experiment_policies(Store& store, const Clock& clock,
                                               const AuditSink& audit, const JobContext& context);
// One ramp move (policy.h decide_ramp) for an active test: changes the coverage (or pauses),
// stores the ramp's progress, audits it (old and new coverage) and, for a rollback, raises a
// "health.alert" with the evidence. Null when the ramp does not move.
Result<nlohmann::json> apply_ramp(Store& store, const Clock& clock, const AuditSink& audit,
                                  const ExperimentPolicy& policy,
                                  const experiments::Experiment& test,
                                  const nlohmann::json& results,
                                  const std::vector<HealthFinding>& findings, bool safety_clear);
// Deletes fanned-out change-feed rows older than `retention`, `batch` rows per transaction,
// until none is left or the job's time bound passes. Pending rows are kept whatever their age.
Result<nlohmann::json> run_change_feed_pruning(Store& store, const Clock& clock,
                                               UnixSeconds retention, const JobContext& context,
                                               std::size_t batch = 5000);
Result<nlohmann::json> run_sunset_review(AutomatedOptimization& optimization, Store& store,
                                         const Clock& clock, const JobContext& context);

// Policies: kNotFound when the test has none (or the test does not exist for put).
Result<ExperimentPolicy> get_policy(Store& store, const std::string& test_id);
Result<ExperimentPolicy> put_policy(Store& store, const Clock& clock, const std::string& test_id,
                                    const nlohmann::json& body);
// Stores an already parsed policy for a loaded test (validates guardrail_metrics against the
// test's metrics; keeps stored overrides unless `overrides_given`, and the ramp's progress
// while its steps are unchanged).
Result<ExperimentPolicy> store_policy(Store& store, const Clock& clock,
                                      const experiments::Experiment& test, ExperimentPolicy policy,
                                      bool overrides_given);
// Records that `check` must not act again on the test's current phase and, when `resume`
// and the test is paused, resumes it. Audited by the caller's route.
Result<ExperimentPolicy> override_policy(Store& store, const Clock& clock,
                                         const std::string& test_id, const std::string& check,
                                         bool resume);

}  // namespace fulcrum::automation
