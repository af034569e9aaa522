// The server's logs, through spdlog, as JSON lines (one object per line, easy to ship to a
// log collector): an access log (one line per request: time, request id, method, route
// pattern, status, duration, caller key id and label, client address, bytes in and out;
// never a path with its parameters, a query string, a header value, a secret or a token)
// and an error log (5xx answers and handler failures with their request id, crashes on a
// fatal signal, failed logins aggregated per minute, key and certificate reloads).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace spdlog {
class logger;
}

namespace fulcrum::api {

struct AccessLogLine {
  std::string request_id, method, route, client_address, caller, caller_label;
  int status = 0;
  double duration_ms = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
};

class ServerLogs {
 public:
  ServerLogs() = default;
  // access: "" off, "-" stdout, else a file (created 0600, appended). error: "" stderr, else
  // a file. Replaces loggers opened before.
  Status open(const std::string& access, const std::string& error);
  bool access_enabled() const { return access_ != nullptr; }
  // Opens the log files again at their paths (after logrotate moved them; SIGHUP does this),
  // onto the same descriptors, so no line is written to a moved file afterwards.
  Status reopen();
  void access(const AccessLogLine& line);
  // level: "info", "warning", "error", "critical". `fields` are extra JSON members (strings).
  void error(std::string_view level, std::string_view event, std::string_view message,
             std::string_view request_id = {},
             const std::vector<std::pair<std::string, std::string>>& fields = {});
  // The error log's file descriptor (for the crash handler); 2 for stderr.
  int error_fd() const { return error_fd_; }

 private:
  std::shared_ptr<spdlog::logger> access_;
  std::shared_ptr<spdlog::logger> error_;
  int error_fd_ = 2;
  int access_fd_ = -1;
  std::string access_path_, error_path_;  // files only ("" for stdout/stderr)
};

// A client's X-Request-Id when it is 1..128 characters of [A-Za-z0-9._:-] (safe to echo and
// log), else "" (then the server makes one).
std::string sane_request_id(std::string_view header);
// 16 random hex characters.
std::string new_request_id();

// Failed authentications per client address, reported per minute: a flood of 3,000 bad
// logins becomes one error-log line, not 3,000 (and no per-request work beyond a count).
class FailedLoginTally {
 public:
  explicit FailedLoginTally(std::size_t max_addresses = 1024) : max_addresses_(max_addresses) {}
  void record(const std::string& address, UnixSeconds now);
  struct Minute {
    UnixSeconds minute = 0;
    std::int64_t failures = 0;
    std::size_t addresses = 0;   // distinct (">= max_addresses" folded into one)
    std::string top_address;     // the address with most failures
    std::int64_t top_failures = 0;
  };
  std::vector<Minute> take_due(UnixSeconds now, bool everything = false);

 private:
  std::size_t max_addresses_;
  std::mutex mutex_;
  std::map<std::int64_t, std::map<std::string, std::int64_t>> by_minute_;
};

// On SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT (and std::terminate) writes one JSON line
// to `fd` naming the signal and the request the crashing thread was handling, then lets the
// signal kill the process as before (core dumps still happen).
void install_crash_logging(int fd);
// The request the calling thread is working on (for the crash line); "" when none.
void set_current_request_id(std::string_view request_id);

}  // namespace fulcrum::api
