// Internal to src/api: the server's state, shared by its two halves. connection.cc owns the
// sockets (accept loop with connection limits and back-off, per-connection read of head and
// body, responses, lingering close); server.cc owns what happens to a request (admission:
// route, authentication, rate limit, body limit; dispatch to the worker pools; audit and
// group commit) and the server's lifecycle. Nothing here is part of the public API.
#pragma once

// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/audit.h"
#include "api/auth.h"
#include "api/auth_throttle.h"
#include "api/keyring.h"
#include "api/logs.h"
#include "api/personal_data_log.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "api/security_events.h"
#include "api/server.h"
#ifdef FULCRUM_HAVE_OPTIMIZATION
#include "optimization/automated_optimization.h"
#endif

namespace fulcrum::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A TLS server context for `cert_file` (PEM chain) and `key_file` (PEM key): TLS 1.2+ only,
// TLS 1.2 limited to ECDHE + AEAD ciphers, no renegotiation or compression.
Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const std::string& cert_file,
                                                             const std::string& key_file,
                                                             std::string* subject = nullptr);

// Writes at most `max_per_minute` lines a minute to the error log and then says how many
// it dropped, so an attacker cannot fill the log at request rate.
class BoundedLog {
 public:
  BoundedLog(ServerLogs& logs, int max_per_minute) : logs_(logs), max_per_minute_(max_per_minute) {}
  void write(const std::string& line, std::string_view request_id = {});

 private:
  ServerLogs& logs_;
  int max_per_minute_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point window_start_{};
  int written_ = 0;
  long suppressed_ = 0;
};

// What admission decided about one request head, before any of its body is read.
struct Admission {
  std::optional<Response> answer;  // set: answer this without reading the body
  const Route* route = nullptr;
  std::map<std::string, std::string> params;
  AuthContext identity;
  std::string route_label;  // metrics label: a route pattern, "static" or "other"
  std::size_t body_limit = 0;
};

// Sent on every response and written to the access log.
struct RequestLogInfo {
  std::string request_id;
  std::string method;
  std::string route;
  std::string client_address;
  std::string caller;        // key id, "user-token", "anonymous"
  std::string caller_label;  // key label, or the minting key of a user token
  std::uint64_t bytes_in = 0;
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(Store& store_in, const Clock& clock_in, ServerOptions options_in);

  // One connection. Shared with shutdown() so idle connections can be closed.
  struct Session {
    asio::strand<asio::io_context::executor_type> strand;
    beast::tcp_stream* stream = nullptr;  // valid while the coroutine runs; touched on strand
    bool busy = false;                    // a request is being read, handled or answered
    std::string address;                  // the client's IP address
  };

  Store& store;
  const Clock& clock;
  ServerOptions options;
  asio::io_context io;
  asio::thread_pool workers;           // handlers of ordinary routes, security-event flushes
  asio::thread_pool priority_workers;  // hot routes and the group commit
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::steady_timer drain_timer;
  asio::steady_timer accept_backoff_timer;
  asio::steady_timer security_flush_timer;
  asio::steady_timer checkpoint_timer;
  asio::steady_timer key_poll_timer;
  HttpMetrics metrics;
  std::shared_ptr<Keyring> keyring;
  AuditKey audit_key;
  std::function<std::string(const AuditEntry&)> audit_hash;
  Authenticator auth;
  AuthFailureThrottle auth_throttle;
  SecurityEventLog security_events;
  PersonalDataReadLog personal_reads;
  ServerLogs logs;
  BoundedLog log{logs, 20};
  FailedLoginTally failed_logins;
  std::mutex checkpoint_mutex;
  std::int64_t checkpointed_sequence = -1;  // under checkpoint_mutex
  ApiContext context;
#ifdef FULCRUM_HAVE_OPTIMIZATION
  // The engines' shared face (trained models, dashboard cache) the engine routes call.
  std::unique_ptr<AutomatedOptimization> optimization;
#endif
  Router router;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  std::mutex sessions_mutex;
  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions;
  std::unordered_map<std::string, int> connections_by_address;  // under sessions_mutex
  std::uint64_t next_session = 0;
  std::atomic<int> open_connections{0};

  // --- lifecycle (server.cc) ---
  Status start();
  void begin_shutdown();  // runs on the io_context
  static void wait_for_signal(std::shared_ptr<Impl> self);
  void close_if_idle(const std::shared_ptr<Session>& session, bool force);
  void schedule_security_flush();
  // Appends aggregated security events and personal-data reads that are due (all of them
  // when `everything`), and logs the failed logins of minutes that have ended.
  void flush_security_events(bool everything);
  void schedule_checkpoint();
  // Appends a signed checkpoint of the audit head to the checkpoint file when the head moved
  // since the last one (always when `force`).
  void write_audit_checkpoint(bool force);
  void schedule_key_poll();
  void reload_keys(bool report_unchanged);

  // TLS (when options.tls_cert_file is set): the context new connections use. SIGHUP
  // replaces it (reload_tls); open connections keep the one they started with.
  std::mutex tls_mutex;
  std::shared_ptr<asio::ssl::context> tls_context;  // under tls_mutex
  bool tls() const { return !options.tls_cert_file.empty(); }
  std::shared_ptr<asio::ssl::context> current_tls();
  void reload_tls();

  // --- connections (connection.cc) ---
  static awaitable<void> accept_loop(std::shared_ptr<Impl> self);
  // Registers an accepted socket, or refuses it (503, close) when a limit is reached.
  void admit_connection(tcp::socket socket,
                        asio::strand<asio::io_context::executor_type> strand);
  static awaitable<void> run_session(std::shared_ptr<Impl> self, std::shared_ptr<Session> session,
                                     std::uint64_t id, tcp::socket socket);
  // Stream: beast::tcp_stream or TlsStream.
  template <class Stream>
  awaitable<void> serve_connection(Stream& stream, Session& session);
  template <class Stream>
  awaitable<bool> write_response(Stream& stream, Response& response, unsigned version,
                                 bool keep_alive, const RequestLogInfo& info,
                                 std::chrono::steady_clock::time_point received);
  void log_access(const RequestLogInfo& info, int status,
                  std::chrono::steady_clock::time_point received, std::uint64_t bytes_out);
  // After answering a request whose body was not read: stop sending, discard what the
  // client still sends for a moment (so it reads our answer instead of a reset), close.
  awaitable<void> linger_and_close(beast::tcp_stream& stream);

  // --- requests (server.cc) ---
  // Routes the head and authenticates the caller; decides the body limit.
  Admission admit(const Request& head, const std::string& client_address);
  // A 401 (counted against the address's failed-authentication budget) or 429 for an unknown
  // SDK client key in the path; nothing for a known one.
  std::optional<Response> refuse_client_key(const std::string& client_key,
                                            const std::string& client_address);
  // The 429 for an address over its failed-authentication budget (counted in /metrics).
  Response rate_limited(int retry_after_seconds, std::string_view field);
  // Counts a failed authentication against the address's budget (logged when it runs out).
  Result<AuditEntry> append_owed_audit(AuditEntry entry);
  void record_auth_failure(const std::string& client_address,
                           std::chrono::steady_clock::time_point now);
  // Runs an admitted request (body read) and returns its answer.
  awaitable<Response> dispatch(Admission& admission, Request request);

  // A handled call: its response and, for audited routes, the audit entry still to append.
  struct Processed {
    Response response;
    std::optional<AuditEntry> audit;
  };
  Processed process(const Route& route, const Request& request, const AuthContext& identity);
  void record_personal_read(const Route& route, const Request& request,
                            const AuthContext& identity, const Response& response);
  awaitable<Response> run_on_pool(asio::thread_pool& pool, std::function<Response()> work);
  awaitable<Status> commit_in_group(std::shared_ptr<Processed> pending);
  struct GroupItem {
    std::shared_ptr<Processed> pending;
    std::function<void(Status)> done;
  };
  std::mutex group_mutex;
  std::vector<GroupItem> group_queue;
  bool group_running = false;
  // Bounds one transaction (PostgreSQL takes at most 65535 parameters in one statement).
  static constexpr std::size_t kMaxGroup = 1024;
  void run_group_commit();
  Status commit_items(const std::vector<GroupItem>& group);
  void audit_failure(const Processed& processed);
  Response finish_synchronously(Processed processed);
};

std::string lower_ascii(std::string_view text);
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace fulcrum::api
