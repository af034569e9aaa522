// The request half of the server and its lifecycle: admission (route, authentication, rate
// limit, body limit, aggregated security events for denied calls), dispatch to the worker
// pools, audit entries and the group commit. Sockets are connection.cc's.
#include <utility>
// GCC 12 flags asio's coroutine frame allocator (operator new/delete with a size argument)
// as mismatched; a known false positive for Boost 1.74 awaitables.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "api/server.h"

#include <iostream>
#include <thread>

#include "api/server_impl.h"
#include "api/static_files.h"

namespace fulcrum::api {

namespace {

std::string strip_prefix(const std::string& pattern) {
  return pattern.starts_with(kApiPrefix) ? pattern.substr(kApiPrefix.size()) : pattern;
}

constexpr auto kSecurityFlushInterval = std::chrono::seconds(5);

}  // namespace

std::string lower_ascii(std::string_view text) {
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

void BoundedLog::write(const std::string& line, std::string_view request_id) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= std::chrono::minutes(1)) {
    if (suppressed_ > 0) {
      logs_.error("warning", "suppressed", std::to_string(suppressed_) +
                                               " similar messages suppressed in the last minute");
    }
    window_start_ = now;
    written_ = 0;
    suppressed_ = 0;
  }
  if (written_ >= max_per_minute_) {
    ++suppressed_;
    return;
  }
  ++written_;
  logs_.error("error", "server", line.substr(0, 512), request_id);
}

Server::Impl::Impl(Store& store_in, const Clock& clock_in, ServerOptions options_in)
    : store(store_in),
      clock(clock_in),
      options(std::move(options_in)),
      io(std::max(1, options.io_threads)),
      workers(static_cast<std::size_t>(std::max(1, options.worker_threads))),
      priority_workers(static_cast<std::size_t>(std::max(1, options.priority_worker_threads))),
      acceptor(io),
      signals(io),
      drain_timer(io),
      accept_backoff_timer(io),
      security_flush_timer(io),
      checkpoint_timer(io),
      key_poll_timer(io),
      keyring(options.keyring ? options.keyring
                              : Keyring::ephemeral(KeySet::generate(clock_in.now()))),
      audit_key(keyring->keys()->audit_secret),
      audit_hash(audit_key.hasher()),
      auth(store, clock, keyring, options.key_cache, options.max_user_token_ttl),
      auth_throttle(options.auth_failure_burst, options.auth_failures_per_minute / 60.0),
      context{store, clock, auth, metrics, options, [] {}} {
#ifdef FULCRUM_HAVE_OPTIMIZATION
  optimization = std::make_unique<AutomatedOptimization>(store, clock);
  context.optimization = optimization.get();
#endif
  context.audit_key = &audit_key;
  register_core_routes(router, context);
  register_ingest_routes(router, context);
  register_experiment_routes(router, context);
  register_dashboard_routes(router, context);
  register_recommend_routes(router, context);
  register_sunset_routes(router, context);
  register_lifecycle_routes(router, context);
  register_flag_routes(router, context);
  register_holdout_routes(router, context);
  register_user_routes(router, context);
  register_automation_routes(router, context);
  register_trust_routes(router, context);
}

Status Server::Impl::start() {
  FULCRUM_RETURN_IF_ERROR(logs.open(options.access_log, options.error_log));
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return invalid_argument("TLS needs both a certificate and a key file", "tls");
  }
  if (tls()) {
    auto context = make_tls_context(options.tls_cert_file, options.tls_key_file);
    if (!context.is_ok()) return context.status();
    tls_context = std::move(*context);
  }
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
    signals.add(SIGHUP);
    wait_for_signal(self);
  }
  schedule_security_flush();
  schedule_checkpoint();
  schedule_key_poll();
  started = true;
  context.start_background();
  for (int i = 0; i < std::max(1, options.io_threads); ++i) {
    threads.emplace_back([this] { io.run(); });
  }
  return Status::ok();
}

void Server::Impl::wait_for_signal(std::shared_ptr<Impl> self) {
  self->signals.async_wait([self](const boost::system::error_code& error, int signal_number) {
    if (error) return;
    if (signal_number == SIGHUP) {
      // Reload what can change under a running server (keys; certificates when on TLS)
      // without closing the listener.
      // Log files first, so the lines below land in the new files after a logrotate.
      const Status reopened = self->logs.reopen();
      self->logs.error("info", "reload",
                       std::string("SIGHUP: reopened the log files, reloading the key file") +
                           (self->tls() ? " and the TLS certificate" : ""));
      if (!reopened.is_ok()) self->logs.error("error", "reload", reopened.to_string());
      asio::post(self->workers, [self] {
        self->reload_keys(/*report_unchanged=*/true);
        self->reload_tls();
      });
      wait_for_signal(self);
      return;
    }
    self->logs.error("info", "shutdown",
                     std::string("graceful shutdown on ") +
                         (signal_number == SIGTERM ? "SIGTERM" : "SIGINT"));
    self->begin_shutdown();
  });
}

void Server::Impl::schedule_key_poll() {
  if (options.key_file_poll.count() <= 0 || keyring->path().empty()) return;
  key_poll_timer.expires_after(options.key_file_poll);
  auto self = shared_from_this();
  key_poll_timer.async_wait([self](const boost::system::error_code& error) {
    if (error || self->stopping) return;
    asio::post(self->workers, [self] { self->reload_keys(/*report_unchanged=*/false); });
    self->schedule_key_poll();
  });
}

void Server::Impl::reload_keys(bool report_unchanged) {
  auto reloaded = keyring->reload_if_changed();
  if (!reloaded.is_ok()) {
    log.write("key file not reloaded: " + reloaded.status().message());
    return;
  }
  if (*reloaded || report_unchanged) {
    auto keys = keyring->keys();
    const TokenKey* signing = keys->signing_key();
    logs.error("info", "reload",
               *reloaded ? "key file reloaded" : "key file unchanged",
               {}, {{"signing_kid", signing ? signing->kid : ""}});
  }
}

void Server::Impl::schedule_checkpoint() {
  if (options.audit_checkpoint_file.empty() || options.audit_checkpoint_interval.count() <= 0) {
    return;
  }
  checkpoint_timer.expires_after(options.audit_checkpoint_interval);
  auto self = shared_from_this();
  checkpoint_timer.async_wait([self](const boost::system::error_code& error) {
    if (error || self->stopping) return;
    asio::post(self->workers, [self] { self->write_audit_checkpoint(/*force=*/false); });
    self->schedule_checkpoint();
  });
}

void Server::Impl::write_audit_checkpoint(bool force) {
  if (options.audit_checkpoint_file.empty()) return;
  std::lock_guard lock(checkpoint_mutex);
  auto checkpoint = checkpoint_head(store, audit_key, clock);
  if (!checkpoint.is_ok()) {
    log.write("audit checkpoint failed: " + checkpoint.status().to_string());
    return;
  }
  if (!force && checkpoint->sequence == checkpointed_sequence) return;
  Status written = append_checkpoint_file(options.audit_checkpoint_file, *checkpoint);
  if (!written.is_ok()) {
    log.write("audit checkpoint failed: " + written.to_string());
    return;
  }
  checkpointed_sequence = checkpoint->sequence;
}

void Server::Impl::begin_shutdown() {
  if (stopping.exchange(true)) return;
  boost::system::error_code ignored;
  acceptor.close(ignored);
  signals.cancel(ignored);
  accept_backoff_timer.cancel();
  security_flush_timer.cancel();
  checkpoint_timer.cancel();
  key_poll_timer.cancel();
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

void Server::Impl::close_if_idle(const std::shared_ptr<Session>& session, bool force) {
  asio::post(session->strand, [session, force] {
    if (session->stream && (force || !session->busy)) {
      boost::system::error_code ignored;
      session->stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      session->stream->cancel();
    }
  });
}

void Server::Impl::schedule_security_flush() {
  security_flush_timer.expires_after(kSecurityFlushInterval);
  auto self = shared_from_this();
  security_flush_timer.async_wait([self](const boost::system::error_code& error) {
    if (error || self->stopping) return;
    asio::post(self->workers, [self] { self->flush_security_events(false); });
    self->schedule_security_flush();
  });
}

void Server::Impl::flush_security_events(bool everything) {
  const UnixSeconds now = clock.now();
  for (const FailedLoginTally::Minute& minute : failed_logins.take_due(now, everything)) {
    logs.error("warning", "failed_logins",
               std::to_string(minute.failures) + " failed authentications in the minute from " +
                   format_iso8601(minute.minute),
               {},
               {{"minute", format_iso8601(minute.minute)},
                {"failures", std::to_string(minute.failures)},
                {"addresses", std::to_string(minute.addresses)},
                {"top_address", minute.top_address},
                {"top_address_failures", std::to_string(minute.top_failures)}});
  }
  std::vector<AuditEntry> entries = security_events.take_due(now, everything);
  std::vector<AuditEntry> reads = personal_reads.take_due(now, everything);
  entries.insert(entries.end(), std::make_move_iterator(reads.begin()),
                 std::make_move_iterator(reads.end()));
  if (entries.empty()) return;
  auto stored = store.append_exposures_and_audit({}, std::move(entries), audit_hash);
  if (!stored.is_ok()) {
    log.write("security events could not be appended to the audit log: " +
              stored.status().to_string());
  }
}

// --- admission ---------------------------------------------------------------------------

Response Server::Impl::rate_limited(int retry_after_seconds, std::string_view field) {
  metrics.count_rate_limited("auth_failures");
  Response response = problem(429, "too many failed authentications from this address; "
                                   "retry after " + std::to_string(retry_after_seconds) + " s",
                              field);
  response.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  return response;
}

void Server::Impl::record_auth_failure(const std::string& client_address,
                                       std::chrono::steady_clock::time_point now) {
  metrics.count_auth_failure();
  failed_logins.record(client_address, clock.now());
  if (auth_throttle.record_failure(client_address, now)) {
    log.write("failed authentications from " + client_address +
              " exceed the limit; answering 429 until its budget refills");
  }
}

std::optional<Response> Server::Impl::refuse_client_key(const std::string& client_key,
                                                        const std::string& client_address) {
  Result<ApiKeyRecord> key = auth.resolve_client_key(client_key);
  if (key.is_ok()) return std::nullopt;
  if (key.status().code() != StatusCode::kUnauthenticated) return problem(key.status());
  const auto now = std::chrono::steady_clock::now();
  // Over budget: the same answer whatever the key, so guesses learn nothing.
  if (std::optional<int> retry = auth_throttle.retry_after(client_address, now)) {
    return rate_limited(*retry, "clientKey");
  }
  record_auth_failure(client_address, now);
  return problem(key.status());
}

Admission Server::Impl::admit(const Request& head, const std::string& client_address) {
  Admission admission;
  admission.body_limit = options.body_limit_bytes;
  Router::Match match = router.match(head.method, head.path);
  if (!match.route) {
    admission.route_label = "other";
    if (match.path_matched) {
      admission.answer = problem(405, "method " + head.method.substr(0, 32) +
                                          " is not allowed here");
      admission.answer->headers.emplace_back("Allow", match.allowed_methods);
    } else if (!options.web_dir.empty() && head.method == "GET" &&
               !head.path.starts_with(kApiPrefix)) {
      admission.route_label = "static";
      admission.answer = serve_dashboard_file(options.web_dir, head.path);
    } else {
      admission.answer = problem(404, "no route for this method and path", "path");
    }
    return admission;
  }
  const Route& route = *match.route;
  admission.route = &route;
  admission.route_label = route.pattern;
  admission.params = std::move(match.params);
  admission.identity.actor = "anonymous";
  if (route.bulk) admission.body_limit = options.bulk_body_limit_bytes;
  if (auto client_key = admission.params.find("clientKey");
      client_key != admission.params.end() && head.method != "OPTIONS") {
    // A client key in the path is a credential too: guesses count against the address's
    // failed-authentication budget like wrong API keys (CORS preflights carry none).
    admission.answer = refuse_client_key(client_key->second, client_address);
    if (admission.answer) {
      add_sdk_cors(*admission.answer);
      return admission;
    }
  }
  if (route.roles.empty()) return admission;

  const std::string authorization = head.header("authorization");
  const std::string action = head.method + " " + strip_prefix(route.pattern);
  auto deny = [&](Response response, const std::string& actor) {
    if (route.audit || route.personal) {
      security_events.record(actor, action, response.status,
                             admission.params.empty() ? std::string_view()
                                                      : admission.params.begin()->second,
                             clock.now());
    }
    admission.answer = std::move(response);
    return admission;
  };

  // An address over its failed-authentication budget: only credentials already known good
  // pass (no store lookup, no feedback for guesses).
  const auto now = std::chrono::steady_clock::now();
  if (!authorization.empty()) {
    if (std::optional<int> retry = auth_throttle.retry_after(client_address, now)) {
      std::optional<AuthContext> known = auth.authenticate_known(authorization);
      if (!known) return deny(rate_limited(*retry, "Authorization"), "rate-limited");
      admission.identity = std::move(*known);
    }
  }
  if (!admission.identity.authenticated) {
    Result<AuthContext> authenticated = auth.authenticate(authorization);
    if (!authenticated.is_ok()) {
      if (authenticated.status().code() != StatusCode::kUnauthenticated) {
        // The store could not be asked (e.g. unavailable): not the caller's fault.
        admission.answer = problem(authenticated.status());
        return admission;
      }
      record_auth_failure(client_address, now);
      return deny(problem(authenticated.status()), "invalid-credential");
    }
    admission.identity = std::move(*authenticated);
  }
  if (!role_allowed(route, admission.identity, admission.params)) {
    if (!admission.identity.authenticated) {
      return deny(problem(401, "credentials required: Authorization: Bearer <key>",
                          "Authorization"),
                  "anonymous");
    }
    return deny(problem(403, std::string("role ") + role_name(admission.identity.role) +
                                 " may not call " + action),
                admission.identity.actor);
  }
  return admission;
}

// --- dispatch ----------------------------------------------------------------------------

awaitable<Response> Server::Impl::dispatch(Admission& admission, Request request) {
  const Route* route = admission.route;
  request.params = std::move(admission.params);
  if (!route->offload) {
    Processed processed = process(*route, request, admission.identity);
    if (!processed.audit && processed.response.exposures_to_commit.empty()) {
      co_return std::move(processed.response);
    }
    // Never a synchronous write (an fsync) on an IO thread: join the next group commit.
    auto pending = std::make_shared<Processed>(std::move(processed));
    Status committed = co_await commit_in_group(pending);
    if (!committed.is_ok()) {
      log.write("group commit failed: " + committed.to_string());
      // A store that is down (503) or full (507) may take the same call later.
      const int status = http_status_for(committed);
      Response failed = problem(status == 503 || status == 507 ? status : 500,
                                "the call could not be recorded: " + committed.message());
      if (status == 503 || status == 507) failed.headers.emplace_back("Retry-After", "1");
      co_return failed;
    }
    co_return std::move(pending->response);
  }
  // Named locals, not temporaries, inside the co_await: GCC 12 double-destroys some
  // temporaries captured across a suspension point.
  auto shared_request = std::make_shared<Request>(std::move(request));
  auto identity = std::make_shared<AuthContext>(std::move(admission.identity));
  std::function<Response()> work = [this, route, shared_request, identity] {
    return finish_synchronously(process(*route, *shared_request, *identity));
  };
  Response response = co_await run_on_pool(route->hot ? priority_workers : workers,
                                           std::move(work));
  co_return response;
}

// Runs `work` on `pool`; the awaiting coroutine resumes on its own executor (the
// connection's strand). Not a coroutine itself: it returns the initiated operation.
awaitable<Response> Server::Impl::run_on_pool(asio::thread_pool& pool,
                                              std::function<Response()> work) {
  return asio::async_initiate<decltype(use_awaitable), void(Response)>(
      [&pool](auto handler, std::function<Response()> job) {
        asio::post(pool, [handler = std::move(handler), job = std::move(job)]() mutable {
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

// Runs a group commit on the priority pool (assignment waits for it): the first call starts
// one; calls arriving while it runs queue up and are written together by the next round
// (one transaction, one fsync, no timer: the batch is whatever arrived during the previous
// commit). The awaiting coroutine resumes on its own executor with the commit's status.
awaitable<Status> Server::Impl::commit_in_group(std::shared_ptr<Processed> pending) {
  return asio::async_initiate<decltype(use_awaitable), void(Status)>(
      [this](auto handler, std::shared_ptr<Processed> item) {
        // While a session awaits this, shutdown's drain timer keeps the io_context running
        // (as for run_on_pool), so the posted completion always runs.
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
        if (start) asio::post(priority_workers, [this] { run_group_commit(); });
      },
      use_awaitable, std::move(pending));
}

// One round: takes what is queued, commits it, answers it; reposts itself while more is
// queued (so other worker jobs interleave with rounds).
void Server::Impl::run_group_commit() {
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
  asio::post(priority_workers, [this] { run_group_commit(); });
}

Status Server::Impl::commit_items(const std::vector<GroupItem>& group) {
  std::vector<ExposureEvent> exposures;
  std::vector<AuditEntry> entries;
  for (const GroupItem& item : group) {
    const auto& events = item.pending->response.exposures_to_commit;
    exposures.insert(exposures.end(), events.begin(), events.end());
    if (item.pending->audit) entries.push_back(*item.pending->audit);
  }
  auto stored = store.append_exposures_and_audit(exposures, std::move(entries), audit_hash);
  return stored.is_ok() ? Status::ok() : stored.status();
}

// Nothing of a failed call was stored; record that it failed, as a synchronous call would.
void Server::Impl::audit_failure(const Processed& processed) {
  if (!processed.audit) return;
  AuditEntry entry = *processed.audit;
  entry.outcome = "error: 500";
  Result<AuditEntry> appended = append_audit(store, audit_key, std::move(entry));
  if (!appended.is_ok()) log.write("audit append failed: " + appended.status().to_string());
}

// The audit row of a call already applied is owed: a store that is briefly unreachable (a
// PostgreSQL restart, a failover) gets a few more tries, about 3 s in all, before the caller
// hears that the call went unaudited. This runs on a worker thread, never the IO thread.
Result<AuditEntry> Server::Impl::append_owed_audit(AuditEntry entry) {
  auto pause = std::chrono::milliseconds(50);
  for (int attempt = 1;; ++attempt) {
    Result<AuditEntry> appended = append_audit(store, audit_key, entry);
    if (appended.is_ok() || appended.status().code() != StatusCode::kUnavailable ||
        attempt == 7) {
      return appended;
    }
    std::this_thread::sleep_for(pause);
    pause *= 2;
  }
}

// The offloaded path: stores the call's exposures (if any) and its audit entry right here.
Response Server::Impl::finish_synchronously(Processed processed) {
  if (!processed.audit && processed.response.exposures_to_commit.empty()) {
    return std::move(processed.response);
  }
  if (processed.response.exposures_to_commit.empty()) {
    Result<AuditEntry> appended = append_owed_audit(std::move(*processed.audit));
    if (!appended.is_ok()) {
      log.write("audit append failed: " + appended.status().to_string());
      // A call that failed changed nothing (e.g. a 507 because the disk is full, where the
      // audit row cannot be written either): its own answer says so.
      if (processed.response.status >= 400) return std::move(processed.response);
      return problem(500, "the call was applied but could not be audited: " +
                              appended.status().message());
    }
    return std::move(processed.response);
  }
  std::vector<AuditEntry> entries;
  if (processed.audit) entries.push_back(*processed.audit);
  auto stored = store.append_exposures_and_audit(processed.response.exposures_to_commit,
                                                 std::move(entries), audit_hash);
  if (!stored.is_ok()) {
    log.write("commit failed: " + stored.status().to_string());
    audit_failure(processed);
    const int status = http_status_for(stored.status());
    Response failed = problem(status == 503 || status == 507 ? status : 500,
                              "the call could not be recorded: " + stored.status().message());
    if (status == 503 || status == 507) failed.headers.emplace_back("Retry-After", "1");
    return failed;
  }
  return std::move(processed.response);
}

// Runs an admitted call's handler (the caller is already authenticated and allowed) and
// builds its audit entry.
Server::Impl::Processed Server::Impl::process(const Route& route, const Request& request,
                                              const AuthContext& identity) {
  Response response;
  set_current_request_id(request.request_id);
  try {
    response = route.handler(request, identity);
  } catch (const std::exception& error) {
    // The detail is for the operator's log only: library messages never reach a caller.
    log.write(request.method + " " + route.pattern + " failed: " + error.what(),
              request.request_id);
    response = problem(500, "internal error");
  }
  set_current_request_id({});
  if (route.personal) record_personal_read(route, request, identity, response);
  if (!route.audit) return Processed{std::move(response), std::nullopt};
  std::string target = response.audit_target;
  if (target.empty() && !request.params.empty()) target = request.params.begin()->second;
  AuditEntry entry = call_audit_entry(clock.now(), identity.actor, request.method, route.pattern,
                                      std::move(target), response.status);
  return Processed{std::move(response), std::move(entry)};
}

void Server::Impl::record_personal_read(const Route& route, const Request& request,
                                        const AuthContext& identity, const Response& response) {
  if (response.status >= 400 || !identity.authenticated) return;
  std::string subject = "*";  // a read of many users (search, lists)
  if (auto it = request.params.find("user_id"); it != request.params.end()) {
    subject = it->second;
  } else if (response.audit_target.starts_with("user:")) {
    subject = response.audit_target.substr(5);
  }
  personal_reads.record(PersonalDataReadLog::caller_of(identity),
                        request.method + " " + strip_prefix(route.pattern), subject, clock.now());
}

// --- public face ---------------------------------------------------------------------------

Server::Server(Store& store, const Clock& clock, ServerOptions options)
    : impl_(std::make_shared<Impl>(store, clock, std::move(options))) {}

Server::~Server() {
  if (impl_->started) {
    shutdown();
    wait();
  }
  impl_->workers.join();
  impl_->context.stop_background();
  impl_->priority_workers.join();
}

Status Server::start() { return impl_->start(); }

std::uint16_t Server::port() const {
  boost::system::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void Server::shutdown() {
  // A weak reference: after wait() no thread runs the io_context, and a handler left queued
  // in it must not keep the internals (which own that io_context) alive forever.
  asio::post(impl_->io, [weak = std::weak_ptr<Impl>(impl_)] {
    if (auto impl = weak.lock()) impl->begin_shutdown();
  });
}

void Server::wait() {
  for (auto& thread : impl_->threads) {
    if (thread.joinable()) thread.join();
  }
  impl_->threads.clear();
  impl_->workers.join();
  impl_->priority_workers.join();
  // Denied calls and personal-data reads counted since the last flush are written now,
  // whatever their minute or hour, and the head they leave is checkpointed.
  impl_->flush_security_events(/*everything=*/true);
  impl_->write_audit_checkpoint(/*force=*/false);
}

Router& Server::router() { return impl_->router; }
Authenticator& Server::authenticator() { return impl_->auth; }
const AuditKey& Server::audit_key() const { return impl_->audit_key; }
int Server::error_log_fd() const { return impl_->logs.error_fd(); }

}  // namespace fulcrum::api
