// The scheduler over real stores with an injected clock: once per period, run records,
// failures raising job.failed, time bounds, config validation; and on PostgreSQL two
// replicas over a simulated week (each job ran exactly once per period) and a runner that
// stops mid-job handing its period over once its lease expires.
#include "automation/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <thread>

#include "automation/webhooks.h"
#include "automation_test_support.h"

namespace fulcrum::automation {
namespace {

using nlohmann::json;
using testing::PostgresSchema;
using testing::SqliteFixture;

UnixSeconds at(const char* iso) { return *parse_iso8601(iso); }

JobConfig job(const std::string& name, const std::string& schedule) {
  JobConfig config;
  config.name = name;
  config.schedule = schedule;
  return config;
}

SchedulerOptions runner(const std::string& holder, UnixSeconds grace = 60) {
  SchedulerOptions options;
  options.holder = holder;
  options.lease_grace_seconds = grace;
  return options;
}

// Counts how often each (job, period) ran, across schedulers.
struct RunLog {
  std::mutex mutex;
  std::map<std::pair<std::string, std::string>, int> runs;
  JobFunction counter(const std::string& name) {
    return [this, name](JobContext& context) -> Result<json> {
      std::lock_guard lock(mutex);
      ++runs[{name, context.period}];
      return json{{"counted", true}};
    };
  }
};

class SchedulerTest : public SqliteFixture {};

TEST_F(SchedulerTest, RunsOncePerPeriodAndRecordsRuns) {
  ManualClock clock(at("2026-12-02T05:00:00Z"));
  RunLog log;
  Scheduler scheduler(store(), clock, {{job("daily", "0 6 * * *"), log.counter("daily")}},
                      runner("runner-a"));
  // A fresh store does not fire the period before the scheduler existed (12-01 06:00).
  EXPECT_TRUE(scheduler.tick()->empty());
  clock.set(at("2026-12-02T06:00:30Z"));
  auto runs = scheduler.tick();
  ASSERT_TRUE(runs.is_ok()) << runs.status().to_string();
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].period, "2026-12-02T06:00:00Z");
  EXPECT_EQ((*runs)[0].outcome, "ok");
  EXPECT_TRUE(scheduler.tick()->empty());  // the same period again: nothing
  clock.advance(3600);
  EXPECT_TRUE(scheduler.tick()->empty());
  // A second scheduler (another process) on the same store does not repeat the period.
  Scheduler other(store(), clock, {{job("daily", "0 6 * * *"), log.counter("daily")}}, runner("runner-b"));
  EXPECT_TRUE(other.tick()->empty());
  clock.set(at("2026-12-03T06:00:00Z"));
  EXPECT_EQ(scheduler.tick()->size(), 1u);
  EXPECT_EQ(log.runs.size(), 2u);
  for (const auto& [key, count] : log.runs) EXPECT_EQ(count, 1) << key.second;

  auto stored = store().list_job_runs("daily", 10);
  ASSERT_TRUE(stored.is_ok());
  ASSERT_EQ(stored->size(), 2u);
  EXPECT_EQ((*stored)[0].period, "2026-12-03T06:00:00Z");  // newest first
  EXPECT_EQ((*stored)[0].outcome, "ok");
  EXPECT_EQ((*stored)[0].runner, "runner-a");
  EXPECT_EQ((*stored)[0].started_at, at("2026-12-03T06:00:00Z"));
  EXPECT_GE((*stored)[0].duration_seconds, 0.0);
  EXPECT_EQ(json::parse((*stored)[0].detail)["counted"], true);
}

TEST_F(SchedulerTest, ARestartCatchesUpTheLatestMissedPeriodOnce) {
  ManualClock clock(at("2026-12-02T06:00:00Z"));
  RunLog log;
  {
    Scheduler first(store(), clock, {{job("daily", "0 6 * * *"), log.counter("daily")}});
    EXPECT_EQ(first.tick()->size(), 1u);
  }
  // Down for three days; a new process runs only the latest missed period.
  clock.set(at("2026-12-05T09:00:00Z"));
  Scheduler second(store(), clock, {{job("daily", "0 6 * * *"), log.counter("daily")}});
  auto runs = second.tick();
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].period, "2026-12-05T06:00:00Z");
  EXPECT_TRUE(second.tick()->empty());
}

TEST_F(SchedulerTest, FailedAndOverrunJobsAreRecordedAndAnnounced) {
  ManualClock clock(at("2026-12-02T00:00:00Z"));
  std::vector<JobDefinition> jobs;
  jobs.push_back({job("broken", "0 * * * *"), [](JobContext&) -> Result<json> {
                    return internal_error("the model store is gone");
                  }});
  JobConfig slow_config = job("slow", "0 * * * *");
  slow_config.timeout_seconds = 60;
  jobs.push_back({slow_config, [&clock](JobContext& context) -> Result<json> {
                    clock.advance(120);  // overruns its bound
                    return json{{"expired", context.expired()}};
                  }});
  Scheduler scheduler(store(), clock, std::move(jobs));
  auto runs = scheduler.tick();
  ASSERT_TRUE(runs.is_ok()) << runs.status().to_string();
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].outcome, "failed");
  EXPECT_NE((*runs)[0].detail.find("the model store is gone"), std::string::npos);
  EXPECT_EQ((*runs)[1].outcome, "timed_out");
  auto events = store().list_documents(kEventKind);
  ASSERT_TRUE(events.is_ok());
  ASSERT_EQ(events->size(), 2u);
  for (const Document& doc : *events) {
    EXPECT_EQ(json::parse(doc.body)["event_type"], "job.failed");
  }
  EXPECT_EQ(scheduler.counters()["broken"].runs_by_outcome["failed"], 1);
}

TEST_F(SchedulerTest, ConfigOverridesAreValidatedAndStored) {
  ManualClock clock(at("2026-12-02T00:00:00Z"));
  RunLog log;
  Scheduler scheduler(store(), clock, {{job("daily", "0 6 * * *"), log.counter("daily")}});
  EXPECT_EQ(scheduler.configure("daily", {{"schedule", "61 * * * *"}}).status().field(),
            "schedule");
  EXPECT_EQ(scheduler.configure("daily", {{"timezone", "Mars/Base"}}).status().field(),
            "timezone");
  EXPECT_EQ(scheduler.configure("daily", {{"timeout_seconds", 0}}).status().field(),
            "timeout_seconds");
  EXPECT_EQ(scheduler.configure("daily", {{"when", "now"}}).status().field(), "when");
  EXPECT_EQ(scheduler.configure("nightly", json::object()).status().code(), StatusCode::kNotFound);
  // Nothing was stored by the refused calls.
  EXPECT_EQ(store().list_documents(kJobConfigKind)->size(), 0u);
  auto changed = scheduler.configure(
      "daily", {{"schedule", "30 7 * * *"}, {"timezone", "Europe/Berlin"}, {"enabled", false}});
  ASSERT_TRUE(changed.is_ok()) << changed.status().to_string();
  auto listed = scheduler.list();
  ASSERT_TRUE(listed.is_ok());
  EXPECT_EQ((*listed)[0].config.schedule, "30 7 * * *");
  EXPECT_FALSE((*listed)[0].config.enabled);
  clock.set(at("2026-12-03T07:00:00Z"));
  EXPECT_TRUE(scheduler.tick()->empty());  // disabled
  ASSERT_TRUE(scheduler.configure("daily", {{"enabled", true}}).is_ok());
  auto runs = scheduler.tick();
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].period, "2026-12-03T06:30:00Z");  // 07:30 Berlin time
  auto manual = scheduler.run_now("daily");
  ASSERT_TRUE(manual.is_ok());
  EXPECT_EQ(manual->period, "manual:2026-12-03T07:00:00Z");
}

// The built-in jobs' schedules, counted by two replicas on one PostgreSQL database.
std::vector<JobDefinition> week_jobs(RunLog& log) {
  return {{job("retention_triggers", "0 6 * * *"), log.counter("retention_triggers")},
          {job("model_retraining", "0 4 * * *"), log.counter("model_retraining")},
          {job("experiment_health", "0 * * * *"), log.counter("experiment_health")},
          // Every 30 minutes here (15 in production) so the simulated week takes 336 ticks.
          {job("experiment_policies", "*/30 * * * *"), log.counter("experiment_policies")},
          {job("sunset_review", "0 7 * * 1"), log.counter("sunset_review")}};
}

TEST(SchedulerReplicasTest, TwoReplicasRunEachJobOncePerPeriodOverAWeek) {
  PostgresSchema schema;
  FULCRUM_REQUIRE_POSTGRES(schema);
  auto store_a = open_store(schema.store_url());
  ASSERT_TRUE(store_a.is_ok()) << store_a.status().to_string();
  auto store_b = open_store(schema.store_url());
  ASSERT_TRUE(store_b.is_ok()) << store_b.status().to_string();
  const UnixSeconds start = at("2026-11-30T00:00:00Z");  // a Monday
  ManualClock clock_a(start), clock_b(start);
  RunLog log;
  Scheduler a(**store_a, clock_a, week_jobs(log), runner("replica-a"));
  Scheduler b(**store_b, clock_b, week_jobs(log), runner("replica-b"));
  std::map<std::string, int> runs_by_replica;
  for (UnixSeconds t = start; t < start + 7 * kSecondsPerDay; t += 30 * 60) {
    clock_a.set(t);
    clock_b.set(t);
    Result<std::vector<JobRun>> ran_a = Status(StatusCode::kInternal, "not run");
    std::thread other([&] { ran_a = a.tick(); });
    auto ran_b = b.tick();
    other.join();
    ASSERT_TRUE(ran_a.is_ok()) << ran_a.status().to_string();
    ASSERT_TRUE(ran_b.is_ok()) << ran_b.status().to_string();
    runs_by_replica["a"] += static_cast<int>(ran_a->size());
    runs_by_replica["b"] += static_cast<int>(ran_b->size());
  }
  std::map<std::string, int> periods;
  for (const auto& [key, count] : log.runs) {
    EXPECT_EQ(count, 1) << key.first << " " << key.second;
    ++periods[key.first];
  }
  EXPECT_EQ(periods["experiment_policies"], 7 * 48);
  EXPECT_EQ(periods["experiment_health"], 7 * 24);
  EXPECT_EQ(periods["retention_triggers"], 7);
  EXPECT_EQ(periods["model_retraining"], 7);
  EXPECT_EQ(periods["sunset_review"], 1);
  EXPECT_EQ(runs_by_replica["a"] + runs_by_replica["b"], 7 * 48 + 7 * 24 + 7 + 7 + 1);
  auto recorded = (*store_a)->list_job_runs("", 10000);
  ASSERT_TRUE(recorded.is_ok());
  EXPECT_EQ(recorded->size(), static_cast<std::size_t>(7 * 48 + 7 * 24 + 7 + 7 + 1));
}

TEST(SchedulerReplicasTest, ARunnerStoppedMidJobHandsItsPeriodOverAfterTheLease) {
  PostgresSchema schema;
  FULCRUM_REQUIRE_POSTGRES(schema);
  auto store_a = open_store(schema.store_url());
  ASSERT_TRUE(store_a.is_ok()) << store_a.status().to_string();
  auto store_b = open_store(schema.store_url());
  ASSERT_TRUE(store_b.is_ok());
  const UnixSeconds start = at("2026-12-02T06:00:00Z");
  ManualClock clock_a(start - 60), clock_b(start - 60);
  std::mutex mutex;
  std::condition_variable changed;
  bool a_inside = false, release_a = false;
  std::atomic<int> b_runs{0};
  JobConfig config = job("retention_triggers", "0 6 * * *");
  config.timeout_seconds = 600;
  Scheduler a(**store_a, clock_a,
              {{config, [&](JobContext&) -> Result<json> {
                  std::unique_lock lock(mutex);
                  a_inside = true;
                  changed.notify_all();
                  changed.wait(lock, [&] { return release_a; });  // "killed": never progresses
                  return json::object();
                }}},
              runner("replica-a", 60));
  Scheduler b(**store_b, clock_b,
              {{config, [&](JobContext&) -> Result<json> {
                  ++b_runs;
                  return json{{"taken_over", true}};
                }}},
              runner("replica-b", 60));
  clock_a.set(start);
  clock_b.set(start);
  Result<std::vector<JobRun>> ran_a = Status(StatusCode::kInternal, "not run");
  std::thread runner([&] { ran_a = a.tick(); });
  {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return a_inside; });
  }
  // While A's lease (600 s timeout + 60 s grace) lasts, B leaves the period alone.
  clock_b.set(start + 600);
  EXPECT_TRUE(b.tick()->empty());
  EXPECT_EQ(b_runs.load(), 0);
  // After it expired, B takes the period over and runs it.
  clock_b.set(start + 661);
  auto ran_b = b.tick();
  ASSERT_TRUE(ran_b.is_ok()) << ran_b.status().to_string();
  ASSERT_EQ(ran_b->size(), 1u);
  EXPECT_EQ((*ran_b)[0].outcome, "ok");
  EXPECT_EQ(b_runs.load(), 1);
  EXPECT_TRUE(b.tick()->empty());
  // A wakes up late: it lost the lease and records that instead of a second success.
  clock_a.set(start + 700);
  {
    std::lock_guard lock(mutex);
    release_a = true;
  }
  changed.notify_all();
  runner.join();
  ASSERT_TRUE(ran_a.is_ok()) << ran_a.status().to_string();
  ASSERT_EQ(ran_a->size(), 1u);
  EXPECT_EQ((*ran_a)[0].outcome, "lost_lease");
  auto runs = (*store_a)->list_job_runs("retention_triggers", 10);
  ASSERT_TRUE(runs.is_ok());
  ASSERT_EQ(runs->size(), 2u);
  int ok = 0;
  for (const auto& run : *runs) ok += run.outcome == "ok" ? 1 : 0;
  EXPECT_EQ(ok, 1);
}

}  // namespace
}  // namespace fulcrum::automation
