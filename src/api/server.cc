// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>
// GCC 12 flags asio's coroutine frame allocator (operator new/delete with a size argument)
// as mismatched; a known false positive for Boost 1.74 awaitables.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "api/server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "api/audit.h"
#include "api/auth.h"
#include "api/metrics.h"
#include "api/routes.h"
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

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (key && value) out[*key] = *value;
  }
  return out;
}

const char* mime_type(const std::filesystem::path& path) {
  const std::string ext = lower(path.extension().string());
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".woff2") return "font/woff2";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// Serves a file under web_dir; "/" is index.html. Any ".." segment or hidden file is refused.
Response serve_static(const std::string& web_dir, std::string_view raw_path) {
  std::optional<std::string> path = percent_decode(raw_path, false);
  if (!path || path->find('\0') != std::string::npos) return problem(400, "bad path", "path");
  std::string relative = *path == "/" ? "index.html" : path->substr(1);
  std::stringstream segments(relative);
  for (std::string segment; std::getline(segments, segment, '/');) {
    if (segment.empty() || segment.front() == '.') return problem(404, "no such file", "path");
  }
  const std::filesystem::path file = std::filesystem::path(web_dir) / relative;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return problem(404, "no such file", "path");
  std::ifstream in(file, std::ios::binary);
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Response response = Response::text(200, std::move(body), mime_type(file));
  response.headers.emplace_back("Cache-Control", "no-cache");
  return response;
}

std::string strip_prefix(const std::string& pattern) {
  return pattern.starts_with(kApiPrefix) ? pattern.substr(kApiPrefix.size()) : pattern;
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(Store& store_in, const Clock& clock_in, ServerOptions options_in)
      : store(store_in),
        clock(clock_in),
        options(std::move(options_in)),
        io(std::max(1, options.io_threads)),
        workers(static_cast<std::size_t>(std::max(1, options.worker_threads))),
        acceptor(io),
        signals(io),
        drain_timer(io),
        auth(store, clock,
             options.token_secret.empty() ? random_token_secret() : options.token_secret,
             options.key_cache),
        context{store, clock, auth, metrics, options} {
#ifdef FULCRUM_HAVE_OPTIMIZATION
    optimization = std::make_unique<AutomatedOptimization>(store, clock);
    context.optimization = optimization.get();
#endif
    register_core_routes(router, context);
    register_ingest_routes(router, context);
    register_experiment_routes(router, context);
    register_dashboard_routes(router, context);
    register_recommend_routes(router, context);
    register_sunset_routes(router, context);
    register_lifecycle_routes(router, context);
    register_user_routes(router, context);
  }

  // One connection. Shared with shutdown() so idle connections can be closed.
  struct Session {
    asio::strand<asio::io_context::executor_type> strand;
    beast::tcp_stream* stream = nullptr;  // valid while the coroutine runs; touched on strand
    bool busy = false;                    // a request is being read, handled or answered
  };

  Store& store;
  const Clock& clock;
  ServerOptions options;
  asio::io_context io;
  asio::thread_pool workers;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::steady_timer drain_timer;
  HttpMetrics metrics;
  Authenticator auth;
  ApiContext context;
#ifdef FULCRUM_HAVE_OPTIMIZATION
  std::unique_ptr<AutomatedOptimization> optimization;
#endif
  Router router;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  std::mutex sessions_mutex;
  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions;
  std::uint64_t next_session = 0;
  std::atomic<int> open_connections{0};

  Status start() {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options.address, ec);
    if (ec) return invalid_argument("not an IP address: '" + options.address + "'", "address");
    tcp::endpoint endpoint(address, options.port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return {StatusCode::kUnavailable,
              "cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " +
                  ec.message()};
    }
    auto self = shared_from_this();
    asio::co_spawn(io, accept_loop(self), asio::detached);
    if (options.handle_signals) {
      signals.add(SIGTERM);
      signals.add(SIGINT);
      signals.async_wait([self](const boost::system::error_code& error, int) {
        if (!error) self->begin_shutdown();
      });
    }
    started = true;
    for (int i = 0; i < std::max(1, options.io_threads); ++i) {
      threads.emplace_back([this] { io.run(); });
    }
    return Status::ok();
  }

  // Runs on the io_context.
  void begin_shutdown() {
    if (stopping.exchange(true)) return;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    signals.cancel(ignored);
    std::vector<std::shared_ptr<Session>> open;
    {
      std::lock_guard lock(sessions_mutex);
      for (auto& [id, session] : sessions) open.push_back(session);
    }
    for (auto& session : open) close_if_idle(session, /*force=*/false);
    if (!open.empty()) {
      drain_timer.expires_after(options.shutdown_grace);
      auto self = shared_from_this();
      drain_timer.async_wait([self](const boost::system::error_code& error) {
        if (error) return;
        std::lock_guard lock(self->sessions_mutex);
        for (auto& [id, session] : self->sessions) self->close_if_idle(session, /*force=*/true);
      });
    }
  }

  void close_if_idle(const std::shared_ptr<Session>& session, bool force) {
    asio::post(session->strand, [session, force] {
      if (session->stream && (force || !session->busy)) {
        boost::system::error_code ignored;
        session->stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        session->stream->cancel();
      }
    });
  }

  static awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    for (;;) {
      boost::system::error_code ec;
      auto strand = asio::make_strand(self->io);
      tcp::socket socket =
          co_await self->acceptor.async_accept(strand, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (self->stopping || ec == asio::error::operation_aborted) co_return;
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      auto session = std::make_shared<Session>(Session{strand});
      std::uint64_t id;
      {
        std::lock_guard lock(self->sessions_mutex);
        id = self->next_session++;
        self->sessions.emplace(id, session);
      }
      self->metrics.set_in_flight(++self->open_connections);
      asio::co_spawn(strand, run_session(self, session, id, std::move(socket)), asio::detached);
    }
  }

  static awaitable<void> run_session(std::shared_ptr<Impl> self, std::shared_ptr<Session> session,
                                     std::uint64_t id, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    session->stream = &stream;
    boost::system::error_code nodelay_ec;
    stream.socket().set_option(tcp::no_delay(true), nodelay_ec);
    try {
      co_await self->serve_connection(stream, *session);
    } catch (const std::exception& error) {
      std::cerr << "fulcrum api: connection error: " << error.what() << "\n";
    }
    session->stream = nullptr;
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    bool last = false;
    {
      std::lock_guard lock(self->sessions_mutex);
      self->sessions.erase(id);
      last = self->sessions.empty();
    }
    self->metrics.set_in_flight(--self->open_connections);
    if (last && self->stopping) {
      asio::post(self->io, [self] { self->drain_timer.cancel(); });
    }
  }

  awaitable<void> serve_connection(beast::tcp_stream& stream, Session& session) {
    beast::flat_buffer buffer;
    for (;;) {
      // Idle between requests: wait for the first byte, closable by shutdown().
      if (buffer.size() == 0) {
        session.busy = false;
        if (stopping) co_return;
        stream.expires_after(options.idle_timeout);
        boost::system::error_code ec;
        std::size_t n = co_await stream.async_read_some(buffer.prepare(4096),
                                                         asio::redirect_error(use_awaitable, ec));
        if (ec) co_return;
        buffer.commit(n);
      }
      session.busy = true;
      stream.expires_after(options.read_timeout);
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.body_limit_bytes);
      boost::system::error_code ec;
      co_await http::async_read_header(stream, buffer, parser,
                                       asio::redirect_error(use_awaitable, ec));
      // A client that sends "Expect: 100-continue" (curl does for bodies over 1 KiB) waits
      // for this interim answer, or a second, before sending its body (RFC 9110 10.1.1).
      if (!ec && !parser.is_done() &&
          beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
        co_await http::async_write(stream, go_on, asio::redirect_error(use_awaitable, ec));
        if (ec) co_return;
      }
      if (!ec && !parser.is_done()) {
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      }
      const auto received = std::chrono::steady_clock::now();
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted) {
        co_return;
      }
      if (ec) {
        // Malformed or too large: answer once, then close (the stream position is lost).
        Response response =
            ec == http::error::body_limit
                ? problem(413, "request body exceeds the limit of " +
                                   std::to_string(options.body_limit_bytes) + " bytes",
                          "body")
            : ec == http::error::header_limit
                ? problem(431, "request headers are too large")
                : problem(400, "malformed HTTP request: " + ec.message());
        metrics.observe(std::string(parser.get().method_string()), "unparsed", response.status,
                        0.0);
        co_await write_response(stream, response, 11, false);
        co_return;
      }
      http::request<http::string_body> message = parser.release();
      const std::string method(message.method_string());
      const bool keep_alive = message.keep_alive();
      const unsigned version = message.version();
      std::string route_label;
      Response response = co_await handle(std::move(message), route_label);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count();
      metrics.observe(method, route_label, response.status, seconds);
      const bool keep = keep_alive && !stopping;
      if (!co_await write_response(stream, response, version, keep)) co_return;
      if (!keep) co_return;
    }
  }

  awaitable<bool> write_response(beast::tcp_stream& stream, Response& response,
                                 unsigned version, bool keep_alive) {
    http::response<http::string_body> out{static_cast<http::status>(response.status), version};
    out.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) out.set(name, value);
    out.body() = std::move(response.body);
    out.keep_alive(keep_alive);
    out.prepare_payload();
    stream.expires_after(options.read_timeout);
    boost::system::error_code ec;
    co_await http::async_write(stream, out, asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  }

  // Routes, authenticates and runs one request. Static files and cheap routes run inline;
  // the rest on the worker pool.
  awaitable<Response> handle(http::request<http::string_body> message, std::string& route_label) {
    Request request;
    request.method = std::string(message.method_string());
    const std::string_view target(message.target().data(), message.target().size());
    const std::size_t question = target.find('?');
    request.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) request.query = parse_query(target.substr(question + 1));
    for (const auto& field : message) {
      request.headers[lower(std::string_view(field.name_string().data(),
                                             field.name_string().size()))] =
          std::string(field.value());
    }
    request.body = std::move(message.body());

    Router::Match match = router.match(request.method, request.path);
    if (!match.route) {
      if (match.path_matched) {
        route_label = "unmatched";
        Response response = problem(405, "method " + request.method + " is not allowed here");
        response.headers.emplace_back("Allow", match.allowed_methods);
        co_return response;
      }
      if (!options.web_dir.empty() && request.method == "GET" &&
          !request.path.starts_with(kApiPrefix)) {
        route_label = "static";
        co_return serve_static(options.web_dir, request.path);
      }
      route_label = "unmatched";
      co_return problem(404, "no route for " + request.method + " " + request.path, "path");
    }
    route_label = match.route->pattern;
    request.params = std::move(match.params);
    const Route* route = match.route;
    if (!route->offload) {
      Processed processed = process(*route, request);
      if (!processed.audit && processed.response.exposures_to_commit.empty()) {
        co_return std::move(processed.response);
      }
      // Never a synchronous write (an fsync) on an IO thread: join the next group commit.
      auto pending = std::make_shared<Processed>(std::move(processed));
      Status committed = co_await commit_in_group(pending);
      if (!committed.is_ok()) {
        std::cerr << "fulcrum api: group commit failed: " << committed.to_string() << "\n";
        co_return problem(http_status_for(committed) == 503 ? 503 : 500,
                          "the call could not be recorded: " + committed.message());
      }
      co_return std::move(pending->response);
    }
    // Named locals, not temporaries, inside the co_await: GCC 12 double-destroys some
    // temporaries captured across a suspension point.
    auto shared_request = std::make_shared<Request>(std::move(request));
    std::function<Response()> work = [this, route, shared_request] {
      return finish_synchronously(process(*route, *shared_request));
    };
    Response response = co_await run_on_workers(std::move(work));
    co_return response;
  }

  // Runs `work` on the worker pool; the awaiting coroutine resumes on its own executor (the
  // connection's strand). Not a coroutine itself: it returns the initiated operation.
  awaitable<Response> run_on_workers(std::function<Response()> work) {
    return asio::async_initiate<decltype(use_awaitable), void(Response)>(
        [this](auto handler, std::function<Response()> job) {
          asio::post(workers, [handler = std::move(handler), job = std::move(job)]() mutable {
            Response response = job();
            auto executor = asio::get_associated_executor(handler);
            asio::post(executor, [handler = std::move(handler),
                                  response = std::move(response)]() mutable {
              std::move(handler)(std::move(response));
            });
          });
        },
        use_awaitable, std::move(work));
  }

  // A handled call: its response and, for audited routes, the audit entry still to append.
  struct Processed {
    Response response;
    std::optional<AuditEntry> audit;
  };

  // Runs a group commit on the worker pool: the first call starts one; calls arriving while
  // it runs queue up and are written together by the next round (one transaction, one fsync,
  // no timer: the batch is whatever arrived during the previous commit). The awaiting
  // coroutine resumes on its own executor with the commit's status.
  awaitable<Status> commit_in_group(std::shared_ptr<Processed> pending) {
    return asio::async_initiate<decltype(use_awaitable), void(Status)>(
        [this](auto handler, std::shared_ptr<Processed> item) {
          // While a session awaits this, shutdown's drain timer keeps the io_context running
          // (as for run_on_workers), so the posted completion always runs.
          GroupItem queued;
          queued.pending = std::move(item);
          queued.done = [handler = std::make_shared<decltype(handler)>(std::move(handler))](
                            Status status) mutable {
            auto executor = asio::get_associated_executor(*handler);
            asio::post(executor, [handler, status = std::move(status)]() mutable {
              std::move (*handler)(std::move(status));
            });
          };
          bool start = false;
          {
            std::lock_guard lock(group_mutex);
            group_queue.push_back(std::move(queued));
            start = !group_running;
            group_running = true;
          }
          if (start) asio::post(workers, [this] { run_group_commit(); });
        },
        use_awaitable, std::move(pending));
  }

  struct GroupItem {
    std::shared_ptr<Processed> pending;
    std::function<void(Status)> done;
  };
  std::mutex group_mutex;
  std::vector<GroupItem> group_queue;
  bool group_running = false;
  // Bounds one transaction (PostgreSQL takes at most 65535 parameters in one statement).
  static constexpr std::size_t kMaxGroup = 1024;

  // One round: takes what is queued, commits it, answers it; reposts itself while more is
  // queued (so other worker jobs interleave with rounds).
  void run_group_commit() {
    std::vector<GroupItem> group;
    {
      std::lock_guard lock(group_mutex);
      if (group_queue.empty()) {
        group_running = false;
        return;
      }
      if (group_queue.size() <= kMaxGroup) {
        group.swap(group_queue);
      } else {
        auto end = group_queue.begin() + static_cast<std::ptrdiff_t>(kMaxGroup);
        group.assign(std::make_move_iterator(group_queue.begin()), std::make_move_iterator(end));
        group_queue.erase(group_queue.begin(), end);
      }
    }
    Status status = commit_items(group);
    if (!status.is_ok() && group.size() > 1) {
      // One transaction for all: retry each on its own so one bad item fails only itself.
      for (GroupItem& item : group) {
        std::vector<GroupItem> alone;
        alone.push_back(std::move(item));
        Status single = commit_items(alone);
        if (!single.is_ok()) audit_failure(*alone.front().pending);
        alone.front().done(std::move(single));
      }
    } else {
      if (!status.is_ok()) audit_failure(*group.front().pending);
      for (GroupItem& item : group) item.done(status);
    }
    asio::post(workers, [this] { run_group_commit(); });
  }

  Status commit_items(const std::vector<GroupItem>& group) {
    std::vector<ExposureEvent> exposures;
    std::vector<AuditEntry> entries;
    for (const GroupItem& item : group) {
      const auto& events = item.pending->response.exposures_to_commit;
      exposures.insert(exposures.end(), events.begin(), events.end());
      if (item.pending->audit) entries.push_back(*item.pending->audit);
    }
    auto stored = store.append_exposures_and_audit(exposures, std::move(entries),
                                                   audit_entry_hash);
    return stored.is_ok() ? Status::ok() : stored.status();
  }

  // Nothing of a failed call was stored; record that it failed, as a synchronous call would.
  void audit_failure(const Processed& processed) {
    if (!processed.audit) return;
    AuditEntry entry = *processed.audit;
    entry.outcome = "error: 500";
    Result<AuditEntry> appended = append_audit(store, std::move(entry));
    if (!appended.is_ok()) {
      std::cerr << "fulcrum api: audit append failed: " << appended.status().to_string() << "\n";
    }
  }

  // The offloaded path: stores the call's exposures (if any) and its audit entry right here.
  Response finish_synchronously(Processed processed) {
    if (!processed.audit && processed.response.exposures_to_commit.empty()) {
      return std::move(processed.response);
    }
    if (processed.response.exposures_to_commit.empty()) {
      Result<AuditEntry> appended = append_audit(store, std::move(*processed.audit));
      if (!appended.is_ok()) {
        std::cerr << "fulcrum api: audit append failed: " << appended.status().to_string() << "\n";
        return problem(500, "the call was applied but could not be audited: " +
                                appended.status().message());
      }
      return std::move(processed.response);
    }
    std::vector<AuditEntry> entries;
    if (processed.audit) entries.push_back(*processed.audit);
    auto stored = store.append_exposures_and_audit(processed.response.exposures_to_commit,
                                                   std::move(entries), audit_entry_hash);
    if (!stored.is_ok()) {
      std::cerr << "fulcrum api: commit failed: " << stored.status().to_string() << "\n";
      audit_failure(processed);
      return problem(500, "the call could not be recorded: " + stored.status().message());
    }
    return std::move(processed.response);
  }

  Processed process(const Route& route, const Request& request) {
    AuthContext identity;
    identity.actor = "anonymous";
    Response response;
    bool call_handler = false;
    if (route.roles.empty()) {
      call_handler = true;
    } else {
      Result<AuthContext> authenticated = auth.authenticate(request.header("authorization"));
      if (!authenticated.is_ok()) {
        response = problem(authenticated.status());
      } else {
        identity = std::move(*authenticated);
        if (!role_allowed(route, identity, request.params)) {
          response = identity.authenticated
                         ? problem(403, std::string("role ") + role_name(identity.role) +
                                            " may not call " + request.method + " " +
                                            strip_prefix(route.pattern))
                         : problem(401, "credentials required: Authorization: Bearer <key>",
                                   "Authorization");
        } else {
          call_handler = true;
        }
      }
    }
    if (call_handler) {
      try {
        response = route.handler(request, identity);
      } catch (const std::exception& error) {
        response = problem(500, std::string("internal error: ") + error.what());
      }
    }
    const bool audited =
        route.audit || (route.audit_admin_read && identity.authenticated &&
                        identity.role == Role::kAdmin && call_handler);
    if (audited) {
      std::string target = response.audit_target;
      if (target.empty() && !request.params.empty()) target = request.params.begin()->second;
      AuditEntry entry = call_audit_entry(clock.now(), identity.actor, request.method,
                                          route.pattern, std::move(target), response.status);
      return Processed{std::move(response), std::move(entry)};
    }
    return Processed{std::move(response), std::nullopt};
  }
};

Server::Server(Store& store, const Clock& clock, ServerOptions options)
    : impl_(std::make_shared<Impl>(store, clock, std::move(options))) {}

Server::~Server() {
  if (impl_->started) {
    shutdown();
    wait();
  }
  impl_->workers.join();
}

Status Server::start() { return impl_->start(); }

std::uint16_t Server::port() const {
  boost::system::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void Server::shutdown() {
  auto impl = impl_;
  asio::post(impl->io, [impl] { impl->begin_shutdown(); });
}

void Server::wait() {
  for (auto& thread : impl_->threads) {
    if (thread.joinable()) thread.join();
  }
  impl_->threads.clear();
  impl_->workers.join();
}

Router& Server::router() { return impl_->router; }
Authenticator& Server::authenticator() { return impl_->auth; }

}  // namespace fulcrum::api
