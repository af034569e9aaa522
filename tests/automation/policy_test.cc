// Experiment health and policies on simulated A/B data in a real store, announced to a real
// receiver: a test whose guardrail is harmed is paused automatically, the action is in the
// audit log with its evidence and the receiver is told; a sequential test with a decisive
// win is completed with the right winner; an admin override stops the policy from acting
// again on that phase. Plus the pure decision rules.
#include "automation/policy.h"

#include <gtest/gtest.h>

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
  EXPECT_LT(harmed["ci"][1].get<double>(), 0.0);
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
