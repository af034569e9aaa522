// The automation runtime of one `fulcrum serve` process: the scheduler (scheduler.h, the
// built-in jobs of jobs.h) and the webhook dispatcher (delivery.h), each on its own
// background thread so a long job never holds up deliveries. start() launches them, stop()
// (or the destructor) ends them after the step in progress. /metrics series come from
// render_metrics(): label values are the job names of the registry and the endpoint ids of
// the stored endpoint configuration only.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "automation/delivery.h"
#include "automation/jobs.h"
#include "automation/scheduler.h"

namespace fulcrum::automation {

struct AutomationOptions {
  bool run_scheduler = true;  // false: jobs only run when asked (run_now)
  bool run_dispatcher = true;
  std::chrono::milliseconds scheduler_interval{5'000};
  std::chrono::milliseconds dispatch_interval{1'000};
  RetryPolicy retry;
  std::chrono::milliseconds webhook_timeout{10'000};
  SchedulerOptions scheduler;
};

class Automation {
 public:
  Automation(Store& store, const Clock& clock, std::vector<JobDefinition> jobs,
             AutomationOptions options = {});
  ~Automation();
  Automation(const Automation&) = delete;
  Automation& operator=(const Automation&) = delete;

  void start();
  void stop();
  // Wakes the dispatcher at once (a route just changed something worth announcing).
  void poke();

  Scheduler& scheduler() { return scheduler_; }
  WebhookDispatcher& dispatcher() { return dispatcher_; }
  // Prometheus text exposition of the job and webhook series.
  std::string render_metrics();

 private:
  void scheduler_loop();
  void dispatcher_loop();

  Store& store_;
  AutomationOptions options_;
  Scheduler scheduler_;
  WebhookDispatcher dispatcher_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool poked_ = false;
  std::thread scheduler_thread_, dispatcher_thread_;
  std::atomic<std::int64_t> scheduler_errors_{0}, dispatcher_errors_{0};
};

}  // namespace fulcrum::automation
