// The job scheduler inside `fulcrum serve`: each job has a schedule (schedule.h), a time
// zone, a time bound and an enabled flag (defaults in code, overridden per job by stored
// "job_config" documents, PUT /automation/jobs/{name}). tick() runs every job whose latest
// scheduled time has passed and whose period (that scheduled time) has not been run: the
// period's lease in the store (Store::acquire_job_lease) makes exactly one runner win across
// replicas; a runner that dies mid-job loses the lease when it expires (timeout + grace) and
// the next tick of any replica takes the period over. Missed periods are not backfilled: a
// server that was down runs each job once for its latest period, and only when the job has
// run on this store before (a fresh store starts at the first scheduled time after the
// scheduler was created, so starting a server does not fire every job at once).
//
// Every run is recorded in the store (job_runs: start, duration, outcome, detail); a failed
// run raises a "job.failed" event (webhooks.h). The clock is injected, so tests move time.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "automation/schedule.h"
#include "core/status.h"
#include "core/time.h"
#include "store/store.h"

namespace fulcrum::automation {

inline constexpr const char* kJobConfigKind = "job_config";

struct JobConfig {
  std::string name;
  std::string schedule;           // schedule.h syntax
  std::string timezone = "UTC";   // IANA name or +HH:MM
  bool enabled = true;
  std::int64_t timeout_seconds = 600;
  std::string description;
  nlohmann::json to_json() const;
};

// Applies `patch` ({schedule?, timezone?, enabled?, timeout_seconds?}) to `base` and
// validates: kInvalidArgument naming the field (unknown fields too).
Result<JobConfig> apply_job_config_patch(const JobConfig& base, const nlohmann::json& patch);

// What a job function gets: the period it runs for and a cooperative time bound.
struct JobContext {
  Store& store;
  const Clock& clock;
  std::string period;
  UnixSeconds deadline = 0;
  // True once the time bound passed (by the clock, or by elapsed wall time).
  std::function<bool()> expired;
};
// Returns what it did (stored as the run's detail) or the error that failed it.
using JobFunction = std::function<Result<nlohmann::json>(JobContext&)>;

struct JobDefinition {
  JobConfig defaults;
  JobFunction run;
};

struct SchedulerOptions {
  std::string holder;  // this runner's id; empty: "<hostname>:<pid>:<random>"
  // A lease lasts the job's timeout plus this, so a live runner is never overtaken.
  UnixSeconds lease_grace_seconds = 60;
};

struct JobStatus {
  JobConfig config;
  std::optional<UnixSeconds> next_run_at;
  std::vector<JobRun> recent_runs;  // newest first
};

class Scheduler {
 public:
  Scheduler(Store& store, const Clock& clock, std::vector<JobDefinition> jobs,
            SchedulerOptions options = {});

  const std::string& holder() const { return holder_; }
  // Job names in registration order (the closed label set of the job metrics).
  std::vector<std::string> job_names() const;
  // Effective config (stored override or defaults); kNotFound for an unknown job.
  Result<JobConfig> config(const std::string& name);
  // Validates and stores a config override; returns the new effective config.
  Result<JobConfig> configure(const std::string& name, const nlohmann::json& patch);
  Result<std::vector<JobStatus>> list(std::size_t runs_per_job = 5);

  // Runs every due job (see the header comment). Returns the runs this process performed.
  Result<std::vector<JobRun>> tick();
  // Runs one job at once for the period "manual:<ISO time>" (its own lease, so a double
  // click does not run it twice in the same second).
  Result<JobRun> run_now(const std::string& name);

  struct Counters {
    std::map<std::string, std::int64_t> runs_by_outcome;  // outcome -> count
    UnixSeconds last_finished_at = 0;
    double last_duration_seconds = 0;
    std::string last_outcome;
  };
  std::map<std::string, Counters> counters() const;

 private:
  const JobDefinition* find(const std::string& name) const;
  // Leases, runs and records one period of one job; nullopt when another runner has it.
  Result<std::optional<JobRun>> run_period(const JobDefinition& job, const JobConfig& config,
                                           const std::string& period);

  Store& store_;
  const Clock& clock_;
  std::vector<JobDefinition> jobs_;
  SchedulerOptions options_;
  std::string holder_;
  UnixSeconds created_at_ = 0;
  std::map<std::string, bool> has_history_;  // job -> it has a run in the store
  mutable std::mutex counters_mutex_;
  std::map<std::string, Counters> counters_;
};

nlohmann::json to_json(const JobRun& run);
nlohmann::json to_json(const JobStatus& status);

// Writes an automation event document (webhooks.h kEventKind) unless one with this id
// exists: the id makes raising it idempotent. Returns true when it was new.
Result<bool> raise_event(Store& store, const Clock& clock, const std::string& event_id,
                         const std::string& event_type, const std::string& subject,
                         const std::string& summary, const nlohmann::json& data);

}  // namespace fulcrum::automation
