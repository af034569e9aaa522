// The Fulcrum HTTP server: Boost.Beast over Asio with one C++20 coroutine per connection
// (keep-alive, read/idle timeouts for slow clients), the route table of
// /api/automated-optimization (see routes.h), static dashboard files, /healthz and /metrics.
// Each request's head is read first (bounded in size), checked for RFC 9112 framing
// (http_framing.h), routed and authenticated; only a caller allowed to call the route gets
// its body read (and "100 Continue"), up to the route's body limit. Connections are capped
// globally and per client address, failed authentication is rate limited per address, and
// denied calls to audited routes are aggregated per minute (security_events.h) instead of
// one audit row each. docs/security.md describes the limits. Handlers that touch the store
// or an engine run on a worker pool so the IO threads stay responsive; hot routes (ingestion,
// assignment) have their own pool, so slow analytic reads cannot stall them; short reads
// (cached lookups, point reads) may run inline. Audit
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
  // Request bodies: routes marked bulk_body() (ingestion) take up to bulk_body_limit_bytes,
  // every other route body_limit_bytes; larger -> 413 before the body is read.
  std::size_t body_limit_bytes = 1024 * 1024;
  std::size_t bulk_body_limit_bytes = 16 * 1024 * 1024;
  // Request line plus header fields; larger -> 431 and the connection is closed.
  std::size_t header_limit_bytes = 16 * 1024;
  // Open connections, in all and per client IP address. A connection over either limit is
  // accepted, answered 503 (Retry-After: 1) and closed at once.
  int max_connections = 4096;
  int max_connections_per_address = 256;
  // A request must arrive completely within read_timeout of its first byte; a keep-alive
  // connection may sit idle for idle_timeout between requests.
  std::chrono::milliseconds read_timeout{15'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // After shutdown starts, requests still running get this long before connections are cut.
  std::chrono::milliseconds shutdown_grace{30'000};
  int io_threads = 1;
  int worker_threads = 2;
  int priority_worker_threads = 2;  // the hot routes' pool (ingestion, assignment, commits)
  // GET /metrics needs an admin or analyst key when set.
  bool metrics_auth = false;
  // Failed authentications per client address: a burst of this many, then one more per
  // 60 / auth_failures_per_minute seconds; over it -> 429 with Retry-After. 0 disables.
  int auth_failure_burst = 20;
  double auth_failures_per_minute = 30;
  bool handle_signals = false;  // SIGTERM/SIGINT start a graceful shutdown
  // The key file's keys (token signing keys, audit key). Null -> fresh random keys held in
  // memory for this process only (tests): tokens then die with it.
  std::shared_ptr<class Keyring> keyring;
  // Signed checkpoints of the audit head are appended to this file (empty: none) every
  // audit_checkpoint_interval when the head moved, and at shutdown.
  std::string audit_checkpoint_file;
  std::chrono::milliseconds audit_checkpoint_interval{60'000};
  // The key file is checked for changes (a rotation by the CLI or another replica) this
  // often; SIGHUP (with handle_signals) checks at once.
  std::chrono::milliseconds key_file_poll{1'000};
  // Logs (JSON lines): the access log, one line per request ("" off, "-" stdout, else a
  // file, created 0600), and the error log (5xx, handler failures, crashes, aggregated
  // failed logins; "" stderr, else a file).
  std::string access_log;
  std::string error_log;
  // TLS: a PEM certificate chain and its PEM private key; both empty = plain HTTP. On TLS
  // every response carries HSTS, and SIGHUP (with handle_signals) reloads the pair without
  // closing the listener.
  std::string tls_cert_file;
  std::string tls_key_file;
  // API keys are re-read from the store at most this often: `fulcrum keys revoke` (another
  // process) takes effect within it, at one point read per key per interval.
  std::chrono::milliseconds key_cache{1'000};
  // A/B tests read by GET /ab-tests/{id} and assignment are cached parsed. Writes through
  // this server invalidate at once; writes by others (another replica, the CLI) are noticed
  // within this time, when the cached version is checked against the store. 0 disables.
  std::chrono::milliseconds experiment_cache{100};
  UnixSeconds max_user_token_ttl = 30 * kSecondsPerDay;
  // Automation (docs/automation.md): once started, run the job scheduler and the webhook
  // dispatcher on background threads. Off by default (tests, embedded servers: the routes
  // still work and jobs run when asked); `fulcrum serve` turns it on.
  bool automation = false;
  bool automation_scheduler = true;  // false: only the webhook dispatcher runs
  std::chrono::milliseconds scheduler_interval{5'000};
  std::chrono::milliseconds webhook_dispatch_interval{1'000};
  std::int64_t webhook_retry_base_seconds = 10;
  std::int64_t webhook_retry_cap_seconds = 3600;
  int webhook_max_attempts = 8;
  std::chrono::milliseconds webhook_timeout{10'000};
  // How long fanned-out change-feed rows (the webhook outbox) are kept before the
  // change_feed_pruning job deletes them.
  UnixSeconds change_feed_retention = 7 * kSecondsPerDay;
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
  // The audit chain's key (from the keyring), e.g. to verify what this server wrote.
  const class AuditKey& audit_key() const;
  // The error log's file descriptor once started (for api::install_crash_logging).
  int error_log_fd() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace fulcrum::api
