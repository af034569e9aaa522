#include "automation/scheduler.h"

#include <unistd.h>

#include <algorithm>

#include "automation/webhooks.h"
#include "core/ids.h"

namespace fulcrum::automation {

using nlohmann::json;

json JobConfig::to_json() const {
  return {{"name", name},
          {"schedule", schedule},
          {"timezone", timezone},
          {"enabled", enabled},
          {"timeout_seconds", timeout_seconds},
          {"description", description}};
}

Result<JobConfig> apply_job_config_patch(const JobConfig& base, const json& patch) {
  if (!patch.is_object()) return invalid_argument("body must be a JSON object", "body");
  JobConfig config = base;
  for (const auto& [key, value] : patch.items()) {
    if (key == "schedule") {
      if (!value.is_string()) return invalid_argument("schedule must be a string", "schedule");
      config.schedule = value.get<std::string>();
    } else if (key == "timezone") {
      if (!value.is_string()) return invalid_argument("timezone must be a string", "timezone");
      config.timezone = value.get<std::string>();
    } else if (key == "enabled") {
      if (!value.is_boolean()) return invalid_argument("enabled must be a boolean", "enabled");
      config.enabled = value.get<bool>();
    } else if (key == "timeout_seconds") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
          value.get<std::int64_t>() > 6 * 3600) {
        return invalid_argument("timeout_seconds must be an integer in [1, 21600]",
                                "timeout_seconds");
      }
      config.timeout_seconds = value.get<std::int64_t>();
    } else {
      return invalid_argument("unknown field", key);
    }
  }
  auto zone = TimeZone::parse(config.timezone);
  if (!zone.is_ok()) return zone.status();
  auto schedule = Schedule::parse(config.schedule, *zone);
  if (!schedule.is_ok()) return schedule.status();
  return config;
}

json to_json(const JobRun& run) {
  json detail = json::parse(run.detail, nullptr, false);
  return {{"run_id", run.run_id},
          {"job", run.job},
          {"period", run.period},
          {"runner", run.runner},
          {"started_at", format_iso8601(run.started_at)},
          {"finished_at", run.finished_at ? json(format_iso8601(run.finished_at)) : json(nullptr)},
          {"duration_seconds", run.duration_seconds},
          {"outcome", run.outcome},
          {"detail", detail.is_discarded() ? json(run.detail) : detail}};
}

json to_json(const JobStatus& status) {
  json out = status.config.to_json();
  out["next_run_at"] = status.next_run_at ? json(format_iso8601(*status.next_run_at)) : json(nullptr);
  json runs = json::array();
  for (const JobRun& run : status.recent_runs) runs.push_back(to_json(run));
  out["last_run"] = runs.empty() ? json(nullptr) : runs[0];
  out["recent_runs"] = runs;
  return out;
}

Result<bool> raise_event(Store& store, const Clock& clock, const std::string& event_id,
                         const std::string& event_type, const std::string& subject,
                         const std::string& summary, const json& data) {
  Document doc;
  doc.kind = kEventKind;
  doc.id = event_id;
  doc.status = "raised";
  doc.body = json{{"event_type", event_type},
                  {"subject", subject},
                  {"summary", summary},
                  {"data", data}}
                 .dump();
  doc.created_at = doc.updated_at = clock.now();
  auto put = store.put_document(doc);
  if (put.is_ok()) return true;
  if (put.status().code() == StatusCode::kAlreadyExists) return false;
  return put.status();
}

namespace {

std::string default_holder() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "host");
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + new_id("run").substr(4, 8);
}

}  // namespace

Scheduler::Scheduler(Store& store, const Clock& clock, std::vector<JobDefinition> jobs,
                     SchedulerOptions options)
    : store_(store),
      clock_(clock),
      jobs_(std::move(jobs)),
      options_(std::move(options)),
      holder_(options_.holder.empty() ? default_holder() : options_.holder),
      created_at_(clock.now()) {}

std::vector<std::string> Scheduler::job_names() const {
  std::vector<std::string> names;
  for (const auto& job : jobs_) names.push_back(job.defaults.name);
  return names;
}

const JobDefinition* Scheduler::find(const std::string& name) const {
  for (const auto& job : jobs_) {
    if (job.defaults.name == name) return &job;
  }
  return nullptr;
}

Result<JobConfig> Scheduler::config(const std::string& name) {
  const JobDefinition* job = find(name);
  if (!job) return not_found("no job named " + name);
  auto stored = store_.get_document(kJobConfigKind, name);
  if (!stored.is_ok()) return stored.status();
  if (!*stored) return job->defaults;
  json patch = json::parse((*stored)->body, nullptr, false);
  auto config = apply_job_config_patch(job->defaults, patch);
  if (!config.is_ok()) return internal_error("stored config of job " + name + " is invalid: " +
                                             config.status().message());
  return config;
}

Result<JobConfig> Scheduler::configure(const std::string& name, const json& patch) {
  const JobDefinition* job = find(name);
  if (!job) return not_found("no job named " + name);
  auto current = store_.get_document(kJobConfigKind, name);
  if (!current.is_ok()) return current.status();
  json merged = json::object();
  if (*current) {
    merged = json::parse((*current)->body, nullptr, false);
    if (!merged.is_object()) merged = json::object();
  }
  if (!patch.is_object()) return invalid_argument("body must be a JSON object", "body");
  for (const auto& [key, value] : patch.items()) merged[key] = value;
  auto config = apply_job_config_patch(job->defaults, merged);
  if (!config.is_ok()) return config.status();
  Document doc;
  doc.kind = kJobConfigKind;
  doc.id = name;
  doc.status = config->enabled ? "enabled" : "disabled";
  doc.body = merged.dump();
  doc.updated_at = clock_.now();
  doc.created_at = *current ? (*current)->created_at : doc.updated_at;
  doc.version = *current ? (*current)->version : 0;
  auto put = store_.put_document(doc);
  if (!put.is_ok()) return put.status();
  return config;
}

Result<std::vector<JobStatus>> Scheduler::list(std::size_t runs_per_job) {
  std::vector<JobStatus> out;
  const UnixSeconds now = clock_.now();
  for (const auto& job : jobs_) {
    auto config = this->config(job.defaults.name);
    if (!config.is_ok()) return config.status();
    JobStatus status;
    status.config = *config;
    auto zone = TimeZone::parse(config->timezone);
    if (zone.is_ok()) {
      auto schedule = Schedule::parse(config->schedule, *zone);
      if (schedule.is_ok() && config->enabled) status.next_run_at = schedule->next_fire_after(now);
    }
    auto runs = store_.list_job_runs(job.defaults.name, runs_per_job);
    if (!runs.is_ok()) return runs.status();
    status.recent_runs = std::move(runs).value();
    out.push_back(std::move(status));
  }
  return out;
}

Result<std::optional<JobRun>> Scheduler::run_period(const JobDefinition& job,
                                                    const JobConfig& config,
                                                    const std::string& period) {
  const UnixSeconds started = clock_.now();
  auto lease = store_.acquire_job_lease(config.name, period, holder_, started,
                                        started + config.timeout_seconds +
                                            options_.lease_grace_seconds);
  if (!lease.is_ok()) return lease.status();
  if (*lease != JobLeaseOutcome::kAcquired) return std::optional<JobRun>();
  // A run of this period left "running" was abandoned by a runner whose lease expired.
  auto previous = store_.list_job_runs(config.name, 20);
  if (previous.is_ok()) {
    for (JobRun& old : *previous) {
      if (old.period == period && old.outcome == "running") {
        old.outcome = "abandoned";
        old.finished_at = started;
        old.detail = json{{"error", "the runner's lease expired before it finished; taken over "
                                    "by " + holder_}}.dump();
        (void)store_.put_job_run(old);
      }
    }
  }
  JobRun run;
  run.job = config.name;
  run.period = period;
  run.runner = holder_;
  run.started_at = started;
  run.outcome = "running";
  run.detail = "{}";
  auto id = store_.put_job_run(run);
  if (!id.is_ok()) return id.status();
  run.run_id = *id;

  const auto wall_start = std::chrono::steady_clock::now();
  const UnixSeconds deadline = started + config.timeout_seconds;
  JobContext context{store_, clock_, period, deadline, {}};
  context.expired = [this, deadline, wall_start, timeout = config.timeout_seconds] {
    return clock_.now() >= deadline ||
           std::chrono::steady_clock::now() - wall_start >= std::chrono::seconds(timeout);
  };
  Result<json> detail = json::object();
  try {
    detail = job.run(context);
  } catch (const std::exception& error) {
    detail = internal_error(std::string("job threw: ") + error.what());
  }
  run.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  run.finished_at = clock_.now();
  if (!detail.is_ok()) {
    run.outcome = "failed";
    run.detail = json{{"error", detail.status().to_string()}}.dump();
  } else {
    run.outcome = context.expired() ? "timed_out" : "ok";
    run.detail = detail->dump();
  }
  // A runner that lost its lease meanwhile (it ran past timeout + grace and was taken
  // over) records that instead of claiming the period.
  Status finished = store_.finish_job_lease(config.name, period, holder_, /*done=*/true);
  if (!finished.is_ok()) {
    if (finished.code() != StatusCode::kFailedPrecondition) return finished;
    run.outcome = "lost_lease";
  }
  FULCRUM_RETURN_IF_ERROR(store_.put_job_run(run).status());
  if (run.outcome == "failed" || run.outcome == "timed_out") {
    auto raised = raise_event(store_, clock_, "job_failed:" + config.name + ":" + period,
                              "job.failed", config.name,
                              "Job " + config.name + " " + run.outcome + " for period " + period,
                              json{{"job", config.name},
                                   {"period", period},
                                   {"outcome", run.outcome},
                                   {"run_id", run.run_id},
                                   {"detail", json::parse(run.detail, nullptr, false)}});
    if (!raised.is_ok()) return raised.status();
  }
  {
    std::lock_guard lock(counters_mutex_);
    Counters& counters = counters_[config.name];
    ++counters.runs_by_outcome[run.outcome];
    counters.last_finished_at = run.finished_at;
    counters.last_duration_seconds = run.duration_seconds;
    counters.last_outcome = run.outcome;
  }
  return std::optional<JobRun>(run);
}

Result<std::vector<JobRun>> Scheduler::tick() {
  std::vector<JobRun> runs;
  const UnixSeconds now = clock_.now();
  for (const auto& job : jobs_) {
    auto config = this->config(job.defaults.name);
    if (!config.is_ok()) return config.status();
    if (!config->enabled) continue;
    auto zone = TimeZone::parse(config->timezone);
    if (!zone.is_ok()) return zone.status();
    auto schedule = Schedule::parse(config->schedule, *zone);
    if (!schedule.is_ok()) return schedule.status();
    auto fire = schedule->last_fire_at_or_before(now);
    if (!fire) continue;
    if (*fire < created_at_ && !has_history_[job.defaults.name]) {
      auto runs = store_.list_job_runs(job.defaults.name, 1);
      if (!runs.is_ok()) return runs.status();
      if (runs->empty()) continue;  // a fresh store: wait for the next scheduled time
      has_history_[job.defaults.name] = true;
    }
    auto run = run_period(job, *config, Schedule::period_key(*fire));
    if (!run.is_ok()) return run.status();
    if (*run) runs.push_back(std::move(**run));
  }
  return runs;
}

Result<JobRun> Scheduler::run_now(const std::string& name) {
  const JobDefinition* job = find(name);
  if (!job) return not_found("no job named " + name);
  auto config = this->config(name);
  if (!config.is_ok()) return config.status();
  auto run = run_period(*job, *config, "manual:" + format_iso8601(clock_.now()));
  if (!run.is_ok()) return run.status();
  if (!*run) return failed_precondition("job " + name + " is already running for this second");
  return std::move(**run);
}

std::map<std::string, Scheduler::Counters> Scheduler::counters() const {
  std::lock_guard lock(counters_mutex_);
  return counters_;
}

}  // namespace fulcrum::automation
