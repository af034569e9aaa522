// The Fulcrum HTTP server: Boost.Beast over Asio with one C++20 coroutine per connection
// (keep-alive, body size limit -> 413, read/idle timeouts for slow clients), the route table
// of /api/automated-optimization (see routes.h), static dashboard files, /healthz and
// /metrics. Handlers that touch the store or an engine run on a worker thread pool so the IO
// threads stay responsive; short reads (cached lookups, point reads) may run inline. Audit
// entries and exposures of inline calls are written by a group commit: calls that arrive
// while a commit is running are written together in the next transaction (one fsync), and
// each is answered only after its transaction committed. shutdown() (or SIGTERM when handle_signals is set) stops
// accepting, lets in-flight requests finish and answer, closes idle connections, then stops.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "api/router.h"
#include "core/status.h"
#include "core/time.h"
#include "store/store.h"

namespace fulcrum::api {

inline constexpr std::string_view kApiPrefix = "/api/automated-optimization";

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 picks an ephemeral port (see Server::port())
  std::string web_dir;        // dashboard static files; empty disables them
  std::size_t body_limit_bytes = 16 * 1024 * 1024;
  // A request must arrive completely within read_timeout of its first byte; a keep-alive
  // connection may sit idle for idle_timeout between requests.
  std::chrono::milliseconds read_timeout{15'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // After shutdown starts, requests still running get this long before connections are cut.
  std::chrono::milliseconds shutdown_grace{30'000};
  int io_threads = 1;
  int worker_threads = 2;
  bool handle_signals = false;  // SIGTERM/SIGINT start a graceful shutdown
  std::string token_secret;     // 32 bytes for user tokens; empty -> random per process
  // API keys are re-read from the store at most this often: `fulcrum keys revoke` (another
  // process) takes effect within it, at one point read per key per interval.
  std::chrono::milliseconds key_cache{1'000};
  // A/B tests read by GET /ab-tests/{id} and assignment are cached parsed. Writes through
  // this server invalidate at once; writes by others (another replica, the CLI) are noticed
  // within this time, when the cached version is checked against the store. 0 disables.
  std::chrono::milliseconds experiment_cache{100};
  UnixSeconds max_user_token_ttl = 30 * kSecondsPerDay;
};

class Server {
 public:
  Server(Store& store, const Clock& clock, ServerOptions options);
  ~Server();  // shuts down gracefully if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the IO threads. Add extra routes to router() before calling it.
  Status start();
  std::uint16_t port() const;
  // Starts a graceful shutdown; safe from any thread, returns at once.
  void shutdown();
  // Blocks until the server has stopped (after shutdown() or a signal).
  void wait();

  Router& router();
  class Authenticator& authenticator();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fulcrum::api
