#include "api/logs.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <random>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "core/untrusted_json.h"

namespace fulcrum::api {

namespace {

std::string now_iso_millis() {
  const auto now = std::chrono::system_clock::now();
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::string text = format_iso8601(static_cast<UnixSeconds>(millis / 1000));  // ...Z
  char fraction[8];
  std::snprintf(fraction, sizeof fraction, ".%03d", static_cast<int>(millis % 1000));
  if (!text.empty() && text.back() == 'Z') text.insert(text.size() - 1, fraction);
  return text;
}

// A log file written with write(2) on one descriptor (O_APPEND, 0600). Reopening (after
// logrotate moved the file) opens the path again and dup2()s it onto the same descriptor
// number, atomically for concurrent writers and for the crash handler, which holds that
// number too.
class AppendFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit AppendFileSink(int fd) : fd_(fd) {}
  ~AppendFileSink() override { ::close(fd_); }
  int fd() const { return fd_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(message, formatted);
    const char* data = formatted.data();
    std::size_t left = formatted.size();
    while (left > 0) {
      const ssize_t written = ::write(fd_, data, left);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return;  // a full disk loses log lines, never the request
      data += written;
      left -= static_cast<std::size_t>(written);
    }
  }
  void flush_() override {}

 private:
  int fd_;
};

Result<int> open_log_file(const std::string& target, const std::string& name) {
  // Created owner-only (not with the umask's mode).
  const int fd = ::open(target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status(StatusCode::kInvalidArgument,
                  "cannot open log file " + target + ": " + std::strerror(errno), name);
  }
  return fd;
}

Result<std::shared_ptr<spdlog::logger>> make_logger(const std::string& name,
                                                   const std::string& target, int* fd_out) {
  spdlog::sink_ptr sink;
  try {
    if (target == "-") {
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
      if (fd_out) *fd_out = 1;
    } else if (target.empty()) {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
      if (fd_out) *fd_out = 2;
    } else {
      auto fd = open_log_file(target, name);
      if (!fd.is_ok()) return fd.status();
      sink = std::make_shared<AppendFileSink>(*fd);
      // The crash handler writes to the same descriptor (write(2) only, async-signal-safe).
      if (fd_out) *fd_out = *fd;
    }
  } catch (const std::exception& error) {
    return Status(StatusCode::kInvalidArgument, "cannot open log " + target + ": " + error.what(),
                  name);
  }
  auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));  // not registered
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  return logger;
}

// Points `fd` at a fresh open of `target` (the file now at that path).
Status reopen_onto(int fd, const std::string& target, const std::string& name) {
  auto fresh = open_log_file(target, name);
  if (!fresh.is_ok()) return fresh.status();
  const int replaced = ::dup2(*fresh, fd);
  const int error = errno;
  ::close(*fresh);
  if (replaced < 0) {
    return Status(StatusCode::kInternal,
                  "cannot reopen log file " + target + ": " + std::strerror(error), name);
  }
  return Status::ok();
}

thread_local char current_request_id[130] = {0};
std::atomic<int> crash_fd{2};

void append_text(char* buffer, std::size_t& used, std::size_t capacity, const char* text) {
  while (*text && used + 1 < capacity) buffer[used++] = *text++;
}

void append_number(char* buffer, std::size_t& used, std::size_t capacity, long long value) {
  char digits[24];
  int count = 0;
  if (value <= 0) {
    digits[count++] = '0';
    value = 0;
  }
  while (value > 0 && count < 23) {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  while (count > 0 && used + 1 < capacity) buffer[used++] = digits[--count];
}

// Async-signal-safe: fixed buffers, write(2), no allocation.
void write_crash_line(const char* what) {
  char line[512];
  std::size_t used = 0;
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  append_text(line, used, sizeof line, "{\"unix_time\":");
  append_number(line, used, sizeof line, static_cast<long long>(now.tv_sec));
  append_text(line, used, sizeof line, ",\"level\":\"critical\",\"event\":\"crash\",\"message\":\"");
  append_text(line, used, sizeof line, what);
  append_text(line, used, sizeof line, "\",\"request_id\":\"");
  append_text(line, used, sizeof line, current_request_id);  // sane characters only
  append_text(line, used, sizeof line, "\"}\n");
  const int fd = crash_fd.load();
  [[maybe_unused]] ssize_t ignored = ::write(fd, line, used);
}

void on_fatal_signal(int signal_number) {
  const char* name = "fatal signal";
  switch (signal_number) {
    case SIGSEGV: name = "SIGSEGV (segmentation fault)"; break;
    case SIGBUS: name = "SIGBUS"; break;
    case SIGILL: name = "SIGILL"; break;
    case SIGFPE: name = "SIGFPE"; break;
    case SIGABRT: name = "SIGABRT (abort)"; break;
    default: break;
  }
  write_crash_line(name);
  // SA_RESETHAND restored the default action: re-raise so the process dies as it would have.
  ::raise(signal_number);
}

}  // namespace

Status ServerLogs::open(const std::string& access, const std::string& error) {
  access_path_ = access == "-" ? "" : access;
  error_path_ = error;
  access_fd_ = -1;
  if (access.empty()) {
    access_.reset();
  } else {
    auto logger = make_logger("access-log", access, &access_fd_);
    if (!logger.is_ok()) return logger.status();
    access_ = std::move(*logger);
  }
  int fd = 2;
  auto logger = make_logger("error-log", error, &fd);
  if (!logger.is_ok()) return logger.status();
  error_ = std::move(*logger);
  error_fd_ = fd >= 0 ? fd : 2;
  return Status::ok();
}

Status ServerLogs::reopen() {
  if (!access_path_.empty() && access_fd_ >= 0) {
    FULCRUM_RETURN_IF_ERROR(reopen_onto(access_fd_, access_path_, "access-log"));
  }
  if (!error_path_.empty() && error_fd_ > 2) {
    FULCRUM_RETURN_IF_ERROR(reopen_onto(error_fd_, error_path_, "error-log"));
  }
  return Status::ok();
}

void ServerLogs::access(const AccessLogLine& line) {
  if (!access_) return;
  nlohmann::json document = {{"time", now_iso_millis()},
                             {"request_id", line.request_id},
                             {"method", line.method},
                             {"route", line.route},
                             {"status", line.status},
                             {"duration_ms", std::round(line.duration_ms * 1000.0) / 1000.0},
                             {"caller", line.caller},
                             {"caller_label", line.caller_label},
                             {"client", line.client_address},
                             {"bytes_in", line.bytes_in},
                             {"bytes_out", line.bytes_out}};
  access_->info(dump_json(document));
}

void ServerLogs::error(std::string_view level, std::string_view event, std::string_view message,
                       std::string_view request_id,
                       const std::vector<std::pair<std::string, std::string>>& fields) {
  nlohmann::json document = {{"time", now_iso_millis()},
                             {"level", std::string(level)},
                             {"event", std::string(event)},
                             {"message", std::string(message.substr(0, 2048))}};
  if (!request_id.empty()) document["request_id"] = std::string(request_id);
  for (const auto& [name, value] : fields) document[name] = value;
  const std::string text = dump_json(document);
  if (!error_) {
    std::fprintf(stderr, "%s\n", text.c_str());
    return;
  }
  error_->info(text);
}

std::string sane_request_id(std::string_view header) {
  if (header.empty() || header.size() > 128) return {};
  for (char c : header) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return {};
  }
  return std::string(header);
}

std::string new_request_id() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::uint64_t value = generator();
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) text[static_cast<std::size_t>(i)] = kDigits[value & 15];
  return text;
}

void FailedLoginTally::record(const std::string& address, UnixSeconds now) {
  const std::int64_t minute = now >= 0 ? now / 60 : (now - 59) / 60;
  std::lock_guard lock(mutex_);
  auto& addresses = by_minute_[minute];
  auto found = addresses.find(address);
  if (found == addresses.end() && addresses.size() >= max_addresses_) {
    ++addresses["*"];
    return;
  }
  ++addresses[address];
}

std::vector<FailedLoginTally::Minute> FailedLoginTally::take_due(UnixSeconds now, bool everything) {
  const std::int64_t current = now >= 0 ? now / 60 : (now - 59) / 60;
  std::vector<Minute> out;
  std::lock_guard lock(mutex_);
  for (auto it = by_minute_.begin(); it != by_minute_.end();) {
    if (!everything && it->first >= current) break;
    Minute minute;
    minute.minute = it->first * 60;
    minute.addresses = it->second.size();
    for (const auto& [address, count] : it->second) {
      minute.failures += count;
      if (count > minute.top_failures) {
        minute.top_failures = count;
        minute.top_address = address;
      }
    }
    out.push_back(std::move(minute));
    it = by_minute_.erase(it);
  }
  return out;
}

void install_crash_logging(int fd) {
  crash_fd.store(fd);
  struct sigaction action {};
  action.sa_handler = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int signal_number : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
    sigaction(signal_number, &action, nullptr);
  }
  std::set_terminate([] {
    write_crash_line("std::terminate (uncaught exception)");
    std::abort();
  });
}

void set_current_request_id(std::string_view request_id) {
  const std::size_t length = std::min<std::size_t>(request_id.size(), sizeof current_request_id - 1);
  std::memcpy(current_request_id, request_id.data(), length);
  current_request_id[length] = '\0';
}

}  // namespace fulcrum::api
