// Experiment health and policies on simulated A/B data in a real store, announced to a real
// receiver: a test whose guardrail is harmed is paused automatically, the action is in the
// audit log with its evidence and the receiver is told; a sequential test with a decisive
// win is completed with the right winner; an admin override stops the policy from acting
// again on that phase. Plus the pure decision rules.
#include "automation/policy.h"

#include <gtest/gtest.h>

#include <set>

#include "api/audit.h"
#include "api/keyring.h"
#include "automation/delivery.h"
#include "automation/jobs.h"
#include "automation/signature.h"
#include "automation_test_support.h"
#include "experiments/service.h"

namespace fulcrum::automation {
namespace {

using nlohmann::json;
using testing::SqliteFixture;
using testing::WebhookReceiver;

constexpr UnixSeconds kStart = 1'796'169'600;  // 2026-12-02T00:00:00Z

json test_request(const std::string& method) {
  return {{"test_name", "New onboarding"},
          {"feature_name", "onboarding"},
          {"success_metrics", {"conversion_rate", "session_minutes"}},
          {"metric_types", {{"conversion_rate", "binomial"}, {"session_minutes", "continuous"}}},
          {"test_groups", {{"control", json::object()}, {"treatment", json::object()}}},
          {"traffic_allocation", {{"control", 0.5}, {"treatment", 0.5}}},
          {"analysis_method", method}};
}

class PolicyTest : public SqliteFixture {
 protected:
  ManualClock clock_{kStart};
  WebhookReceiver receiver_;

  std::string start_test(const std::string& method) {
    auto created = experiments::create_ab_test(store(), clock_, test_request(method));
    EXPECT_TRUE(created.is_ok()) << created.status().to_string();
    EXPECT_TRUE(experiments::start_ab_test(store(), clock_, created->test_id).is_ok());
    return created->test_id;
  }
  // 3000 users per group; conversion per 100 users and session minutes (mean, +-3
  // deterministic spread) per group.
  void plant(const std::string& test_id, int control_per_100, int treatment_per_100,
             double control_minutes, double treatment_minutes) {
    EventBatch batch;
    for (int g = 0; g < 2; ++g) {
      const std::string variant = g == 0 ? "control" : "treatment";
      for (int k = 0; k < 3000; ++k) {
        const std::string user = variant + "_" + std::to_string(k);
        const UnixSeconds exposed = kStart + (k % 5) * kSecondsPerDay + 3600;
        batch.exposures.push_back({test_id, user, variant, exposed});
        if (k % 100 < (g == 0 ? control_per_100 : treatment_per_100)) {
          batch.metric_events.push_back({user, "conversion_rate", 1.0, exposed + 600});
        }
        const double minutes = (g == 0 ? control_minutes : treatment_minutes) + (k % 7) - 3.0;
        batch.metric_events.push_back({user, "session_minutes", minutes, exposed + 1200});
      }
    }
    ASSERT_TRUE(store().ingest(batch).is_ok());
    clock_.set(kStart + 6 * kSecondsPerDay);
  }
  AuditSink audit() {
    return [this](AuditEntry entry) {
      return api::append_audit(store(), audit_key_, std::move(entry)).status();
    };
  }
  api::AuditKey audit_key_{api::KeySet::generate(1).audit_secret};
  JobContext context() {
    return JobContext{store(), clock_, "test", clock_.now() + 600, [] { return false; }};
  }
  std::vector<json> delivered_events(const Endpoint& endpoint) {
    WebhookDispatcher dispatcher(store(), clock_);
    EXPECT_TRUE(dispatcher.fan_out_pending().is_ok());
    EXPECT_TRUE(dispatcher.send_due().is_ok());
    std::vector<json> events;
    for (const auto& r : receiver_.processed()) {
      EXPECT_TRUE(verify_signature(r.headers.at("fulcrum-signature"), endpoint.secret, r.body,
                                   clock_.now())
                      .is_ok());
      events.push_back(json::parse(r.body));
    }
    return events;
  }
};

TEST_F(PolicyTest, GuardrailHarmPausesTheTestAuditsAndAnnounces) {
  auto endpoint = create_endpoint(store(), clock_,
                                  {{"url", receiver_.url()},
                                   {"event_types", {"health.alert", "test.state_changed"}}});
  ASSERT_TRUE(endpoint.is_ok());
  const std::string id = start_test("frequentist");
  // Conversion unchanged; the treatment cuts session minutes from 10 to 8 (a guardrail).
  plant(id, 10, 10, 10.0, 8.0);
  auto policy = put_policy(store(), clock_, id, {{"guardrail_metrics", {"session_minutes"}}});
  ASSERT_TRUE(policy.is_ok()) << policy.status().to_string();
  EXPECT_EQ(put_policy(store(), clock_, id, {{"guardrail_metrics", {"revenue"}}}).status().field(),
            "guardrail_metrics[0]");

  auto acted = run_experiment_policies(store(), clock_, audit(), context());
  ASSERT_TRUE(acted.is_ok()) << acted.status().to_string();
  ASSERT_EQ((*acted)["actions"].size(), 1u) << acted->dump();
  EXPECT_EQ((*acted)["actions"][0]["action"], "pause");
  EXPECT_EQ((*acted)["actions"][0]["check"], "guardrail_harm");
  const json harmed = (*acted)["actions"][0]["evidence"]["harmed"][0];
  EXPECT_EQ(harmed["metric"], "session_minutes");
  EXPECT_EQ(harmed["group"], "treatment");
  // Judged on the always-valid confidence sequence, which lies below 0.
  EXPECT_EQ(harmed["rule"], "confidence_interval");
  EXPECT_TRUE(harmed["anytime_valid"].get<bool>());
  EXPECT_LT(harmed["confidence_sequence"][1].get<double>(), 0.0);
  EXPECT_EQ(experiments::get_ab_test(store(), id)->status, experiments::ExperimentStatus::kPaused);

  bool audited = false;
  ASSERT_TRUE(store().scan_audit([&](const AuditEntry& entry) {
    if (entry.action == "policy.pause" && entry.target == id) {
      audited = true;
      EXPECT_EQ(entry.actor, "automation:experiment_policies");
      EXPECT_NE(entry.outcome.find("guardrail_harm"), std::string::npos);
    }
  }).is_ok());
  EXPECT_TRUE(audited);
  EXPECT_TRUE(api::verify_audit_chain(store(), audit_key_)->intact);

  // Announced: the start (draft -> active), the automatic pause and the alert with evidence.
  std::vector<json> events = delivered_events(*endpoint);
  ASSERT_EQ(events.size(), 3u);
  std::map<std::string, json> by_type;
  for (const auto& e : events) {
    if (e["type"] != "test.state_changed" || e["data"]["to"] == "paused") by_type[e["type"]] = e;
  }
  EXPECT_EQ(by_type["test.state_changed"]["data"]["from"], "active");
  EXPECT_EQ(by_type["test.state_changed"]["data"]["to"], "paused");
  EXPECT_EQ(by_type["health.alert"]["data"]["action"], "pause");
  EXPECT_EQ(by_type["health.alert"]["data"]["evidence"]["harmed"][0]["metric"], "session_minutes");

  // The admin overrides and resumes: the policy does not pause it again for this phase.
  auto overridden = override_policy(store(), clock_, id, "guardrail_harm", /*resume=*/true);
  ASSERT_TRUE(overridden.is_ok()) << overridden.status().to_string();
  EXPECT_EQ(experiments::get_ab_test(store(), id)->status, experiments::ExperimentStatus::kActive);
  auto again = run_experiment_policies(store(), clock_, audit(), context());
  ASSERT_TRUE(again.is_ok());
  EXPECT_TRUE((*again)["actions"].empty()) << again->dump();
  EXPECT_EQ(experiments::get_ab_test(store(), id)->status, experiments::ExperimentStatus::kActive);
  EXPECT_EQ(override_policy(store(), clock_, id, "vibes", false).status().field(), "check");
}

TEST_F(PolicyTest, DecisiveSequentialWinCompletesWithTheWinner) {
  auto endpoint = create_endpoint(store(), clock_,
                                  {{"url", receiver_.url()}, {"event_types", {"test.decided"}}});
  ASSERT_TRUE(endpoint.is_ok());
  const std::string id = start_test("sequential");
  // Treatment converts at 16% against 10%; session minutes equal.
  plant(id, 10, 16, 10.0, 10.0);
  ASSERT_TRUE(put_policy(store(), clock_, id, json::object()).is_ok());
  auto acted = run_experiment_policies(store(), clock_, audit(), context());
  ASSERT_TRUE(acted.is_ok()) << acted.status().to_string();
  ASSERT_EQ((*acted)["actions"].size(), 1u) << acted->dump();
  EXPECT_EQ((*acted)["actions"][0]["action"], "complete");
  EXPECT_EQ((*acted)["actions"][0]["check"], "decisive");
  auto test = experiments::get_ab_test(store(), id);
  EXPECT_EQ(test->status, experiments::ExperimentStatus::kCompleted);
  ASSERT_TRUE(test->winner.has_value());
  EXPECT_EQ(*test->winner, "treatment");
  std::vector<json> events = delivered_events(*endpoint);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "test.decided");
  EXPECT_EQ(events[0]["data"]["winner"], "treatment");
}

TEST_F(PolicyTest, HealthJobAlertsOncePerTestPhase) {
  const std::string id = start_test("frequentist");
  // A sample ratio mismatch: exposures 3000 vs 2400 under a 50/50 allocation.
  EventBatch batch;
  for (int g = 0; g < 2; ++g) {
    const std::string variant = g == 0 ? "control" : "treatment";
    for (int k = 0; k < (g == 0 ? 3000 : 2400); ++k) {
      batch.exposures.push_back({id, variant + std::to_string(k), variant, kStart + 3600});
    }
  }
  ASSERT_TRUE(store().ingest(batch).is_ok());
  clock_.set(kStart + kSecondsPerDay);
  auto first = run_experiment_health(store(), clock_, context());
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  ASSERT_EQ((*first)["new_alerts"].size(), 1u) << first->dump();
  EXPECT_EQ((*first)["new_alerts"][0]["check"], "srm");
  auto second = run_experiment_health(store(), clock_, context());
  EXPECT_TRUE((*second)["new_alerts"].empty());
  // Health checks never act: the test is still running.
  EXPECT_EQ(experiments::get_ab_test(store(), id)->status, experiments::ExperimentStatus::kActive);
}

// A ramp over simulated days: users arrive through the real assignment (only those inside
// the coverage are exposed), the policy job runs every 6 hours and raises the coverage one
// step per day; no user ever changes variant.
TEST_F(PolicyTest, RampAdvancesStepByStepOverSimulatedDays) {
  json request = test_request("frequentist");
  request["coverage"] = 0.01;
  request["metric_roles"] = {{"session_minutes", "guardrail"}};
  request["test_id"] = "ramp_over_days";  // a fixed hash seed: the same users every run
  auto created = experiments::create_ab_test(store(), clock_, request);
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  const std::string id = created->test_id;
  ASSERT_TRUE(experiments::start_ab_test(store(), clock_, id).is_ok());
  auto policy = put_policy(
      store(), clock_, id,
      {{"ramp", {{"steps", {0.01, 0.05, 0.25, 0.5}}, {"min_hours_per_step", 24},
                 {"min_users_per_step", 10}}}});
  ASSERT_TRUE(policy.is_ok()) << policy.status().to_string();

  std::map<std::string, std::string> variant_of;
  int next_user = 0;
  std::vector<std::pair<int, double>> coverage_by_tick;  // (tick, coverage after the run)
  for (int tick = 0; tick < 5 * 4; ++tick) {  // 5 days, every 6 hours
    // 600 new users arrive in these 6 hours.
    const experiments::Experiment test = *experiments::get_ab_test(store(), id);
    EventBatch batch;
    for (int k = 0; k < 600; ++k, ++next_user) {
      const std::string user = "u" + std::to_string(next_user);
      std::optional<ExposureEvent> exposure;
      auto a = experiments::plan_assignment(store(), test, user, nullptr, clock_.now(), exposure);
      ASSERT_TRUE(a.is_ok());
      if (!exposure) continue;
      batch.exposures.push_back(*exposure);
      variant_of[user] = *a->variant;
      if (next_user % 10 == 0) batch.metric_events.push_back({user, "conversion_rate", 1.0, clock_.now()});
      batch.metric_events.push_back(
          {user, "session_minutes", 10.0 + (next_user % 7) - 3.0, clock_.now()});
    }
    ASSERT_TRUE(store().ingest(batch).is_ok());
    auto run = run_experiment_policies(store(), clock_, audit(), context());
    ASSERT_TRUE(run.is_ok()) << run.status().to_string();
    EXPECT_EQ((*run)["evaluated"], 1) << "tick " << tick << ": " << run->dump();
    coverage_by_tick.push_back({tick, experiments::get_ab_test(store(), id)->config.coverage});
    clock_.advance(6 * 3600);
  }
  // Ticks 0-3: 1%; the first run on day 1 (tick 4) raises to 5%, day 2 to 25%, day 3 to 50%.
  for (const auto& [tick, coverage] : coverage_by_tick) {
    const double expected = tick < 4 ? 0.01 : tick < 8 ? 0.05 : tick < 12 ? 0.25 : 0.5;
    EXPECT_DOUBLE_EQ(coverage, expected) << "tick " << tick;
  }
  auto stored = get_policy(store(), id);
  ASSERT_TRUE(stored->ramp_state.has_value());
  EXPECT_EQ(stored->ramp_state->step, 3);
  EXPECT_EQ(stored->ramp_state->status, "done");
  // Every user stayed in one variant across the ramp; the analysis sees each once.
  EXPECT_EQ(*store().count_multi_variant_users(id), 0);
  // Each step is audited with the old and new coverage; the test records them too.
  std::vector<std::string> outcomes;
  ASSERT_TRUE(store().scan_audit([&](const AuditEntry& entry) {
    if (entry.action == "policy.ramp_advance" && entry.target == id) outcomes.push_back(entry.outcome);
  }).is_ok());
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_NE(outcomes[0].find("coverage 0.01 -> 0.05"), std::string::npos) << outcomes[0];
  EXPECT_NE(outcomes[2].find("coverage 0.25 -> 0.5"), std::string::npos) << outcomes[2];
  const auto test = *experiments::get_ab_test(store(), id);
  ASSERT_EQ(test.phases[0].coverage_changes.size(), 3u);
  EXPECT_EQ(test.phases[0].coverage_changes[1].by, "automation:experiment_policies");
  EXPECT_EQ(test.status, experiments::ExperimentStatus::kActive);
  EXPECT_EQ(test.hash_seed, id);
  EXPECT_TRUE(api::verify_audit_chain(store(), audit_key_)->intact);
}

TEST_F(PolicyTest, GuardrailHarmRollsTheRampBackAuditsAndAnnounces) {
  auto endpoint = create_endpoint(store(), clock_,
                                  {{"url", receiver_.url()}, {"event_types", {"health.alert"}}});
  ASSERT_TRUE(endpoint.is_ok());
  json request = test_request("frequentist");
  request["coverage"] = 0.25;
  auto created = experiments::create_ab_test(store(), clock_, request);
  ASSERT_TRUE(created.is_ok());
  const std::string id = created->test_id;
  ASSERT_TRUE(experiments::start_ab_test(store(), clock_, id).is_ok());
  ASSERT_TRUE(put_policy(store(), clock_, id,
                         {{"guardrail_metrics", {"session_minutes"}},
                          {"ramp", {{"steps", {0.01, 0.05, 0.25, 0.5}}}}})
                  .is_ok());
  // The ramp stands at its 25% step (the test's coverage) when the treatment turns out to
  // cut session minutes: a harmed guardrail.
  plant(id, 10, 10, 10.0, 8.0);
  auto acted = run_experiment_policies(store(), clock_, audit(), context());
  ASSERT_TRUE(acted.is_ok()) << acted.status().to_string();
  ASSERT_EQ((*acted)["actions"].size(), 1u) << acted->dump();
  const json action = (*acted)["actions"][0];
  EXPECT_EQ(action["action"], "ramp_rollback");
  EXPECT_EQ(action["check"], "guardrail_harm");
  EXPECT_DOUBLE_EQ(action["coverage_to"].get<double>(), 0.05);
  EXPECT_EQ(action["evidence"]["guardrail_harm"]["harmed"][0]["metric"], "session_minutes");
  auto test = experiments::get_ab_test(store(), id);
  EXPECT_EQ(test->status, experiments::ExperimentStatus::kActive);  // rolled back, not paused
  EXPECT_DOUBLE_EQ(test->config.coverage, 0.05);
  EXPECT_EQ(get_policy(store(), id)->ramp_state->status, "rolled_back");
  EXPECT_EQ(get_policy(store(), id)->ramp_state->step, 1);

  bool audited = false;
  ASSERT_TRUE(store().scan_audit([&](const AuditEntry& entry) {
    if (entry.action != "policy.ramp_rollback") return;
    audited = true;
    EXPECT_EQ(entry.actor, "automation:experiment_policies");
    EXPECT_NE(entry.outcome.find("coverage 0.25 -> 0.05"), std::string::npos) << entry.outcome;
    EXPECT_NE(entry.outcome.find("automation_event policy:"), std::string::npos) << entry.outcome;
  }).is_ok());
  EXPECT_TRUE(audited);

  // The outbox holds the alert: a delivery row is written and the receiver gets it signed.
  WebhookDispatcher dispatcher(store(), clock_);
  ASSERT_TRUE(dispatcher.fan_out_pending().is_ok());
  auto rows = store().list_webhook_deliveries({endpoint->endpoint_id, "", 100});
  ASSERT_TRUE(rows.is_ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].event_type, "health.alert");
  std::vector<json> events = delivered_events(*endpoint);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["data"]["action"], "ramp_rollback");
  EXPECT_DOUBLE_EQ(events[0]["data"]["coverage_from"].get<double>(), 0.25);

  // Held: the harm does not roll back again, nor advance, nor pause.
  clock_.advance(2 * kSecondsPerDay);
  auto held = run_experiment_policies(store(), clock_, audit(), context());
  EXPECT_TRUE((*held)["actions"].empty()) << held->dump();
  EXPECT_DOUBLE_EQ(experiments::get_ab_test(store(), id)->config.coverage, 0.05);

  // The admin overrides the harm check: the ramp moves on from 5% after a full step.
  ASSERT_TRUE(override_policy(store(), clock_, id, "guardrail_harm", /*resume=*/true).is_ok());
  EXPECT_EQ(get_policy(store(), id)->ramp_state->status, "ramping");
  clock_.advance(kSecondsPerDay);
  auto resumed = run_experiment_policies(store(), clock_, audit(), context());
  ASSERT_EQ((*resumed)["actions"].size(), 1u) << resumed->dump();
  EXPECT_EQ((*resumed)["actions"][0]["action"], "ramp_advance");
  EXPECT_DOUBLE_EQ(experiments::get_ab_test(store(), id)->config.coverage, 0.25);
}

TEST_F(PolicyTest, HarmAtTheFirstStepPausesTheTest) {
  json request = test_request("frequentist");
  request["coverage"] = 0.05;
  request["metric_roles"] = {{"session_minutes", "guardrail"}};
  auto created = experiments::create_ab_test(store(), clock_, request);
  const std::string id = created->test_id;
  ASSERT_TRUE(experiments::start_ab_test(store(), clock_, id).is_ok());
  ASSERT_TRUE(
      put_policy(store(), clock_, id, {{"ramp", {{"steps", {0.05, 0.5}}}}}).is_ok());
  plant(id, 10, 10, 10.0, 8.0);
  auto acted = run_experiment_policies(store(), clock_, audit(), context());
  ASSERT_TRUE(acted.is_ok()) << acted.status().to_string();
  ASSERT_EQ((*acted)["actions"].size(), 1u) << acted->dump();
  EXPECT_EQ((*acted)["actions"][0]["action"], "pause");
  // The default guardrail (metric_roles) decided, by its non-inferiority margin.
  const json harmed = (*acted)["actions"][0]["evidence"]["guardrail_harm"]["harmed"][0];
  EXPECT_EQ(harmed["metric"], "session_minutes");
  EXPECT_EQ(harmed["rule"], "non_inferiority_margin");
  EXPECT_DOUBLE_EQ(harmed["margin"].get<double>(), 0.01);
  EXPECT_EQ(experiments::get_ab_test(store(), id)->status, experiments::ExperimentStatus::kPaused);
  EXPECT_DOUBLE_EQ(experiments::get_ab_test(store(), id)->config.coverage, 0.05);
}

// Default guardrails come from metric_roles, and a guardrail's harm is judged against its
// non-inferiority margin, not "the interval lies below 0" (both by the always-valid
// confidence sequence of the relative lift, stats/sequential.h).
TEST(PolicyGuardrailTest, DefaultsComeFromMetricRolesAndTheMarginDecides) {
  constexpr int kUsers = 100000;  // per group
  // A relative lift with the standard error of its 95% interval `ci`.
  auto group = [&](json ci, bool significant, std::optional<json> guardrail) {
    const double lower = ci[0].get<double>(), upper = ci[1].get<double>();
    json g = {{"relative",
               {{"estimate", (lower + upper) / 2},
                {"standard_error", (upper - lower) / (2 * 1.959963984540054)},
                {"ci", ci}}},
              {"sample_size", kUsers},
              {"significant", significant},
              {"adjusted_p_value", significant ? 0.001 : 0.5}};
    if (guardrail) g["guardrail"] = *guardrail;
    return g;
  };
  const json control = {{"sample_size", kUsers}};
  auto results = [&](json latency_guardrail, json minutes_group) {
    return json{
        {"control", "control"},
        {"alpha", 0.05},
        {"metrics",
         {{{"name", "conversion_rate"},
           {"role", "goal"},
           {"groups", {{"control", control}, {"treatment", group({0.01, 0.03}, true, {})}}}},
          {{"name", "session_minutes"},
           {"role", "secondary"},
           {"groups", {{"control", control}, {"treatment", minutes_group}}}},
          {{"name", "app_latency"},
           {"role", "guardrail"},
           {"higher_is_better", false},
           {"groups",
            {{"control", control},
             {"treatment", group({0.0024, 0.0026}, true, latency_guardrail)}}}}}}};
  };
  const json within_margin = {{"margin", 0.05}, {"harmed", false}, {"non_inferior", true},
                              {"harm_p_value", 0.9}, {"worst_case_lift", 0.004}};
  const json beyond_margin = {{"margin", 0.001}, {"harmed", true}, {"non_inferior", false},
                              {"harm_p_value", 0.004}, {"worst_case_lift", 0.004}};
  const json minutes_down = group({-0.2, -0.1}, true, {});
  auto harm_of = [](const std::vector<HealthFinding>& findings) -> json {
    for (const auto& f : findings) {
      if (f.check == "guardrail_harm") return f.evidence["harmed"];
    }
    return json::array();
  };
  // Latency got significantly worse (interval above 0 for a lower-is-better metric), but
  // within its 5% margin: no harm. The secondary metric's drop is not a default guardrail.
  EXPECT_TRUE(harm_of(health_findings(results(within_margin, minutes_down), {}, 0)).empty());
  // Worse than its margin: harm, by the margin rule, with the margin as evidence.
  const json harmed = harm_of(health_findings(results(beyond_margin, minutes_down), {}, 0));
  ASSERT_EQ(harmed.size(), 1u);
  EXPECT_EQ(harmed[0]["metric"], "app_latency");
  EXPECT_EQ(harmed[0]["rule"], "non_inferiority_margin");
  EXPECT_TRUE(harmed[0]["anytime_valid"].get<bool>());
  EXPECT_DOUBLE_EQ(harmed[0]["margin"].get<double>(), 0.001);
  EXPECT_DOUBLE_EQ(harmed[0]["fixed_horizon_p_value"].get<double>(), 0.004);
  // The whole confidence sequence lies beyond the margin on the harmful side.
  EXPECT_GT(harmed[0]["confidence_sequence"][0].get<double>(), 0.001);
  // A policy naming the secondary metric checks it by its interval.
  const json named = harm_of(health_findings(results(within_margin, minutes_down), {"session_minutes"}, 0));
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0]["metric"], "session_minutes");
  EXPECT_EQ(named[0]["rule"], "confidence_interval");
  EXPECT_TRUE(harm_of(health_findings(results(within_margin, group({-0.2, 0.1}, false, {})),
                                      {"session_minutes"}, 0))
                  .empty());
}

// The automatic checks wait for kMinUsersForAutomaticChecks users in every group: a tiny
// test's noise is not an alarm, however its fixed-horizon verdicts came out.
TEST(PolicyGuardrailTest, NothingIsFlaggedBeforeEveryGroupHasAHundredUsers) {
  auto results = [](std::int64_t control_users, std::int64_t treatment_users) {
    return json{{"control", "control"},
                {"alpha", 0.05},
                {"srm",
                 {{"mismatch", true},
                  {"observed", {{"control", control_users}, {"treatment", treatment_users / 4}}},
                  {"expected",
                   {{"control", (control_users + treatment_users / 4) / 2.0},
                    {"treatment", (control_users + treatment_users / 4) / 2.0}}}}},
                {"metrics",
                 {{{"name", "app_latency"},
                   {"role", "guardrail"},
                   {"higher_is_better", false},
                   {"groups",
                    {{"control", {{"sample_size", control_users}}},
                     {"treatment",
                      {{"sample_size", treatment_users},
                       {"relative", {{"estimate", 0.5}, {"standard_error", 0.01}}},
                       {"guardrail", {{"margin", 0.01}, {"harmed", true}}}}}}}}}}};
  };
  auto checks = [](const std::vector<HealthFinding>& findings) {
    std::set<std::string> names;
    for (const auto& f : findings) names.insert(f.check);
    return names;
  };
  EXPECT_EQ(checks(health_findings(results(99, 400), {}, 0)), std::set<std::string>{});
  EXPECT_EQ(checks(health_findings(results(400, 99), {}, 0)), std::set<std::string>{});
  // With 100 users the guardrail (a 50% worse latency) fires; the SRM (400 vs 100 expected
  // 250 each) too.
  EXPECT_EQ(checks(health_findings(results(400, 400), {}, 0)),
            (std::set<std::string>{"guardrail_harm", "srm"}));
}

TEST(PolicyRampConfigTest, BadRampConfigNamesTheField) {
  auto field = [](const json& ramp) { return parse_policy({{"ramp", ramp}}).status().field(); };
  EXPECT_EQ(field({{"steps", {0.05, 0.01}}}), "ramp.steps[1]");         // not increasing
  EXPECT_EQ(field({{"steps", {0.05, 0.05}}}), "ramp.steps[1]");         // not strictly
  EXPECT_EQ(field({{"steps", {0.0, 0.5}}}), "ramp.steps[0]");           // outside (0, 1]
  EXPECT_EQ(field({{"steps", {0.5, 1.5}}}), "ramp.steps[1]");
  EXPECT_EQ(field({{"steps", {0.1, "half"}}}), "ramp.steps[1]");        // wrong type
  EXPECT_EQ(field({{"steps", json::array()}}), "ramp.steps");
  EXPECT_EQ(field({{"min_hours_per_step", 24}}), "ramp.steps");         // missing
  EXPECT_EQ(field({{"steps", {0.5}}, {"min_hours_per_step", "1d"}}), "ramp.min_hours_per_step");
  EXPECT_EQ(field({{"steps", {0.5}}, {"min_users_per_step", -1}}), "ramp.min_users_per_step");
  EXPECT_EQ(field({{"steps", {0.5}}, {"on_guardrail_harm", "panic"}}), "ramp.on_guardrail_harm");
  EXPECT_EQ(field({{"steps", {0.5}}, {"speed", 2}}), "ramp.speed");
  EXPECT_EQ(field(json::array({0.1})), "ramp");
  auto ok = parse_policy({{"ramp", {{"steps", {0.01, 0.05, 0.25, 0.5}}, {"on_guardrail_harm", "pause"}}}});
  ASSERT_TRUE(ok.is_ok());
  EXPECT_TRUE(ok->ramp->pause_on_harm);
  EXPECT_DOUBLE_EQ(ok->ramp->min_hours_per_step, 24);
  // The job's progress round-trips through the stored document.
  ok->ramp_state = RampState{1, 2, 1'796'169'600, 40, "rolled_back"};
  auto again = parse_policy(ok->to_json());
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->ramp_state->step, 2);
  EXPECT_EQ(again->ramp_state->step_started_at, 1'796'169'600);
  EXPECT_EQ(again->ramp_state->status, "rolled_back");
  EXPECT_EQ(again->ramp->steps, ok->ramp->steps);
}

TEST(PolicyDecisionTest, SafetyComesFirstAndOverridesAreRespected) {
  std::vector<HealthFinding> findings = {{"decisive", "win", json::object()},
                                         {"srm", "srm", json::object()}};
  ExperimentPolicy policy;
  EXPECT_EQ(decide_policy(policy, 0, findings).action, PolicyAction::kPause);
  EXPECT_EQ(decide_policy(policy, 0, findings).check, "srm");
  policy.overrides.push_back({0, "srm"});
  EXPECT_EQ(decide_policy(policy, 0, findings).action, PolicyAction::kComplete);
  EXPECT_EQ(decide_policy(policy, 1, findings).check, "srm");  // a new phase is checked again
  policy.enabled = false;
  EXPECT_EQ(decide_policy(policy, 0, findings).action, PolicyAction::kNone);
  EXPECT_EQ(parse_policy({{"stop_on_srm", "yes"}}).status().field(), "stop_on_srm");
  EXPECT_EQ(parse_policy({{"ramp", true}}).status().field(), "ramp");
}

}  // namespace
}  // namespace fulcrum::automation
