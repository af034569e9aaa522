#include "automation/runtime.h"

#include <iostream>
#include <sstream>

namespace fulcrum::automation {

Automation::Automation(Store& store, const Clock& clock, std::vector<JobDefinition> jobs,
                       AutomationOptions options)
    : store_(store),
      options_(std::move(options)),
      scheduler_(store, clock, std::move(jobs), options_.scheduler),
      dispatcher_(store, clock, options_.retry, options_.webhook_timeout) {}

Automation::~Automation() { stop(); }

void Automation::start() {
  std::lock_guard lock(mutex_);
  stopping_ = false;
  if (options_.run_scheduler && !scheduler_thread_.joinable()) {
    scheduler_thread_ = std::thread([this] { scheduler_loop(); });
  }
  if (options_.run_dispatcher && !dispatcher_thread_.joinable()) {
    dispatcher_thread_ = std::thread([this] { dispatcher_loop(); });
  }
}

void Automation::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (scheduler_thread_.joinable()) scheduler_thread_.join();
  if (dispatcher_thread_.joinable()) dispatcher_thread_.join();
}

void Automation::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  wake_.notify_all();
}

void Automation::scheduler_loop() {
  for (;;) {
    auto runs = scheduler_.tick();
    if (!runs.is_ok()) {
      ++scheduler_errors_;
      std::cerr << "fulcrum automation: scheduler: " << runs.status().to_string() << "\n";
    } else if (!runs->empty()) {
      poke();  // jobs raise events: deliver them now
    }
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, options_.scheduler_interval, [this] { return stopping_; })) return;
  }
}

void Automation::dispatcher_loop() {
  for (;;) {
    bool busy = false;
    auto fanned = dispatcher_.fan_out_pending();
    if (!fanned.is_ok()) {
      ++dispatcher_errors_;
      std::cerr << "fulcrum automation: webhook fan-out: " << fanned.status().to_string() << "\n";
    }
    auto sent = dispatcher_.send_due();
    if (!sent.is_ok()) {
      ++dispatcher_errors_;
      std::cerr << "fulcrum automation: webhook delivery: " << sent.status().to_string() << "\n";
    } else {
      busy = *sent > 0;
    }
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    if (busy) continue;
    wake_.wait_for(lock, options_.dispatch_interval, [this] { return stopping_ || poked_; });
    poked_ = false;
    if (stopping_) return;
  }
}

std::string Automation::render_metrics() {
  std::ostringstream out;
  const auto jobs = scheduler_.counters();
  out << "# HELP fulcrum_job_runs_total Job runs by this process, by job and outcome.\n"
         "# TYPE fulcrum_job_runs_total counter\n";
  static const char* kOutcomes[] = {"ok", "failed", "timed_out", "lost_lease"};
  for (const std::string& name : scheduler_.job_names()) {
    auto found = jobs.find(name);
    for (const char* outcome : kOutcomes) {
      std::int64_t count = 0;
      if (found != jobs.end()) {
        auto it = found->second.runs_by_outcome.find(outcome);
        if (it != found->second.runs_by_outcome.end()) count = it->second;
      }
      out << "fulcrum_job_runs_total{job=\"" << name << "\",outcome=\"" << outcome << "\"} "
          << count << "\n";
    }
  }
  out << "# HELP fulcrum_job_last_duration_seconds Duration of the job's last run here.\n"
         "# TYPE fulcrum_job_last_duration_seconds gauge\n";
  for (const std::string& name : scheduler_.job_names()) {
    auto found = jobs.find(name);
    out << "fulcrum_job_last_duration_seconds{job=\"" << name << "\"} "
        << (found == jobs.end() ? 0.0 : found->second.last_duration_seconds) << "\n";
  }
  out << "# HELP fulcrum_job_last_finished_timestamp_seconds When the job's last run here "
         "finished.\n# TYPE fulcrum_job_last_finished_timestamp_seconds gauge\n";
  for (const std::string& name : scheduler_.job_names()) {
    auto found = jobs.find(name);
    out << "fulcrum_job_last_finished_timestamp_seconds{job=\"" << name << "\"} "
        << (found == jobs.end() ? 0 : found->second.last_finished_at) << "\n";
  }
  // Endpoint ids come from the stored configuration (at most kMaxEndpoints).
  const auto webhooks = dispatcher_.counters();
  auto endpoints = list_endpoints(store_);
  out << "# HELP fulcrum_webhook_deliveries_total Webhook delivery attempts by this process, by "
         "endpoint and outcome.\n# TYPE fulcrum_webhook_deliveries_total counter\n";
  if (endpoints.is_ok()) {
    for (const Endpoint& endpoint : *endpoints) {
      EndpointCounters counters;
      if (auto it = webhooks.find(endpoint.endpoint_id); it != webhooks.end()) counters = it->second;
      const std::string label = "endpoint=\"" + endpoint.endpoint_id + "\"";
      out << "fulcrum_webhook_deliveries_total{" << label << ",outcome=\"delivered\"} "
          << counters.delivered << "\n";
      out << "fulcrum_webhook_deliveries_total{" << label << ",outcome=\"failed_attempt\"} "
          << counters.failed_attempts << "\n";
      out << "fulcrum_webhook_deliveries_total{" << label << ",outcome=\"dead\"} "
          << counters.dead << "\n";
    }
  }
  out << "# HELP fulcrum_automation_errors_total Scheduler and dispatcher loop errors.\n"
         "# TYPE fulcrum_automation_errors_total counter\n"
      << "fulcrum_automation_errors_total{loop=\"scheduler\"} " << scheduler_errors_.load() << "\n"
      << "fulcrum_automation_errors_total{loop=\"dispatcher\"} " << dispatcher_errors_.load()
      << "\n";
  return out.str();
}

}  // namespace fulcrum::automation
