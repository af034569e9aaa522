// The socket half of the server: accepting (connection limits, back-off when out of file
// descriptors), reading one request at a time (head first, bounded; body only after
// admission), writing answers and closing. What a request means is server.cc's business.
#include <utility>
// GCC 12 flags asio's coroutine frame allocator (operator new/delete with a size argument)
// as mismatched; a known false positive for Boost 1.74 awaitables.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <array>
#include <iostream>
#include <limits>

#include "api/event_stream_io.h"
#include "api/http_framing.h"
#include "api/server_impl.h"

namespace fulcrum::api {

namespace {

constexpr auto kMinAcceptBackoff = std::chrono::milliseconds(5);
constexpr auto kMaxAcceptBackoff = std::chrono::milliseconds(1000);

std::string_view buffer_view(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

}  // namespace

awaitable<void> Server::Impl::accept_loop(std::shared_ptr<Impl> self) {
  auto backoff = kMinAcceptBackoff;
  for (;;) {
    boost::system::error_code ec;
    auto strand = asio::make_strand(self->io);
    tcp::socket socket =
        co_await self->acceptor.async_accept(strand, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (self->stopping || ec == asio::error::operation_aborted) co_return;
      // EMFILE/ENFILE (or ENOBUFS, ENOMEM) leave the connection in the backlog: retrying at
      // once would spin. Back off, doubling up to a second, and keep serving open connections.
      self->metrics.count_accept_error();
      self->log.write("accept failed (" + ec.message() + "); retrying in " +
                      std::to_string(backoff.count()) + " ms");
      self->accept_backoff_timer.expires_after(backoff);
      boost::system::error_code wait_ec;
      co_await self->accept_backoff_timer.async_wait(asio::redirect_error(use_awaitable, wait_ec));
      if (self->stopping) co_return;
      backoff = std::min(backoff * 2, kMaxAcceptBackoff);
      continue;
    }
    backoff = kMinAcceptBackoff;
    self->admit_connection(std::move(socket), strand);
  }
}

void Server::Impl::admit_connection(tcp::socket socket,
                                    asio::strand<asio::io_context::executor_type> strand) {
  boost::system::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  std::string address = peer.address().to_string();
  const char* refused = nullptr;
  std::uint64_t id = 0;
  auto session = std::make_shared<Session>(Session{strand, nullptr, false, address});
  {
    std::lock_guard lock(sessions_mutex);
    int& from_address = connections_by_address[address];
    if (static_cast<int>(sessions.size()) >= options.max_connections) {
      refused = "global_limit";
    } else if (from_address >= options.max_connections_per_address) {
      refused = "address_limit";
    } else {
      ++from_address;
      id = next_session++;
      sessions.emplace(id, session);
    }
    if (refused && from_address == 0) connections_by_address.erase(address);
  }
  if (refused) {
    // Accept-then-refuse: a short 503 the client can read (when it is listening) costs one
    // non-blocking send and frees the descriptor at once; nothing of its request is read.
    metrics.count_refused_connection(refused);
    log.write(std::string("connection from ") + address + " refused: " +
              (std::string_view(refused) == "global_limit" ? "max_connections" :
                                                            "max_connections_per_address") +
              " reached");
    static const std::string kBody =
        R"({"type":"about:blank","title":"Service Unavailable","status":503,)"
        R"("detail":"too many connections"})";
    static const std::string kAnswer =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
        "Retry-After: 1\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n"
        "Content-Length: " + std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(kAnswer), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    return;
  }
  metrics.set_in_flight(++open_connections);
  asio::co_spawn(strand, run_session(shared_from_this(), session, id, std::move(socket)),
                 asio::detached);
}

awaitable<void> Server::Impl::run_session(std::shared_ptr<Impl> self,
                                          std::shared_ptr<Session> session, std::uint64_t id,
                                          tcp::socket socket) {
  boost::system::error_code nodelay_ec;
  socket.set_option(tcp::no_delay(true), nodelay_ec);
  std::shared_ptr<asio::ssl::context> tls_context = self->tls() ? self->current_tls() : nullptr;
  std::optional<beast::tcp_stream> plain;
  std::optional<TlsStream> secure;
  beast::tcp_stream* lowest = nullptr;
  if (tls_context) {
    secure.emplace(std::move(socket), *tls_context);
    lowest = &beast::get_lowest_layer(*secure);
  } else {
    plain.emplace(std::move(socket));
    lowest = &*plain;
  }
  session->stream = lowest;
  try {
    if (secure) {
      // The handshake counts against the read timeout like a request head: a client that
      // never finishes it holds its connection slot for at most that long.
      lowest->expires_after(self->options.read_timeout);
      boost::system::error_code ec;
      co_await secure->async_handshake(asio::ssl::stream_base::server,
                                       asio::redirect_error(use_awaitable, ec));
      if (!ec) {
        co_await self->serve_connection(*secure, *session);
        // close_notify, briefly: a client that does not answer it does not hold us.
        lowest->expires_after(std::chrono::seconds(1));
        co_await secure->async_shutdown(asio::redirect_error(use_awaitable, ec));
      }
    } else {
      co_await self->serve_connection(*plain, *session);
    }
  } catch (const std::exception& error) {
    self->log.write(std::string("connection error: ") + error.what());
  }
  session->stream = nullptr;
  boost::system::error_code ignored;
  lowest->socket().shutdown(tcp::socket::shutdown_both, ignored);
  lowest->socket().close(ignored);
  bool last = false;
  {
    std::lock_guard lock(self->sessions_mutex);
    self->sessions.erase(id);
    auto counted = self->connections_by_address.find(session->address);
    if (counted != self->connections_by_address.end() && --counted->second <= 0) {
      self->connections_by_address.erase(counted);
    }
    last = self->sessions.empty();
  }
  self->metrics.set_in_flight(--self->open_connections);
  if (last && self->stopping) {
    asio::post(self->io, [self] { self->drain_timer.cancel(); });
  }
}

template <class Stream>
awaitable<void> Server::Impl::serve_connection(Stream& stream, Session& session) {
  beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  for (;;) {
    // Idle between requests: wait for the first byte, closable by shutdown().
    if (buffer.size() == 0) {
      session.busy = false;
      if (stopping) co_return;
      lowest.expires_after(options.idle_timeout);
      boost::system::error_code ec;
      std::size_t n = co_await stream.async_read_some(buffer.prepare(4096),
                                                       asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      buffer.commit(n);
    }
    session.busy = true;
    // The whole request (head and body) must arrive within read_timeout of its first byte.
    lowest.expires_after(options.read_timeout);
    const auto started = std::chrono::steady_clock::now();
    RequestLogInfo info;
    info.client_address = session.address;
    info.route = "unparsed";
    info.caller = "anonymous";

    // 1. The head, at most header_limit_bytes, in the buffer. Empty lines before a request
    //    line are skipped (RFC 9112 section 2.2).
    std::size_t head_end = std::string_view::npos;
    for (;;) {
      std::string_view bytes = buffer_view(buffer);
      std::size_t blank = 0;
      while (bytes.substr(blank, 2) == "\r\n") blank += 2;
      if (blank > 0) {
        buffer.consume(blank);
        continue;
      }
      head_end = find_request_head_end(bytes);
      if (head_end != std::string_view::npos || bytes.size() > options.header_limit_bytes) break;
      boost::system::error_code ec;
      const std::size_t room = options.header_limit_bytes + 4 - bytes.size();
      std::size_t n = co_await stream.async_read_some(
          buffer.prepare(std::min<std::size_t>(room, 4096)), asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;  // timeout (slow client), reset or shutdown: nothing to answer
      buffer.commit(n);
    }
    if (head_end == std::string_view::npos || head_end > options.header_limit_bytes + 4) {
      metrics.count_framing_error();
      metrics.observe("", "unparsed", 431, 0.0);
      Response response = problem(431, "request head exceeds the limit of " +
                                            std::to_string(options.header_limit_bytes) + " bytes",
                                  "headers");
      info.request_id = new_request_id();
      if (co_await write_response(stream, response, 11, false, info, started)) {
        co_await linger_and_close(lowest);
      }
      co_return;
    }

    // 2. Framing (RFC 9112): anything ambiguous is answered 400 and the connection closed,
    //    so no byte of it can be taken for another request.
    const std::string_view head_bytes = buffer_view(buffer).substr(0, head_end);
    if (Status framing = check_request_framing(head_bytes); !framing.is_ok()) {
      metrics.count_framing_error();
      metrics.observe("", "unparsed", 400, 0.0);
      Response response = problem(400, "malformed HTTP request: " + framing.message(),
                                  framing.field());
      info.request_id = new_request_id();
      if (co_await write_response(stream, response, 11, false, info, started)) {
        co_await linger_and_close(lowest);
      }
      co_return;
    }
    http::request_parser<http::empty_body> head_parser;
    head_parser.header_limit(static_cast<std::uint32_t>(head_end + 1));
    // The route decides, below. Not boost::none: Beast 1.74 compares `length > none` as true.
    head_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    boost::system::error_code parse_ec;
    const std::size_t used = head_parser.put(asio::buffer(head_bytes.data(), head_end), parse_ec);
    if (parse_ec == http::error::need_more) parse_ec = {};
    if (!parse_ec && !head_parser.is_header_done()) parse_ec = http::error::partial_message;
    if (parse_ec) {
      metrics.count_framing_error();
      metrics.observe("", "unparsed", 400, 0.0);
      Response response = problem(400, "malformed HTTP request: " + parse_ec.message());
      info.request_id = new_request_id();
      if (co_await write_response(stream, response, 11, false, info, started)) {
        co_await linger_and_close(lowest);
      }
      co_return;
    }
    buffer.consume(used);
    const auto received = std::chrono::steady_clock::now();

    // 3. Admission from the head alone: route, caller, body limit.
    const http::request<http::empty_body>& message = head_parser.get();
    Request request;
    request.method = std::string(message.method_string());
    const std::string_view target(message.target().data(), message.target().size());
    const std::size_t question = target.find('?');
    request.path = std::string(target.substr(0, question));
    if (question != std::string_view::npos) request.query = parse_query(target.substr(question + 1));
    for (const auto& field : message) {
      request.headers[lower_ascii(std::string_view(field.name_string().data(),
                                                   field.name_string().size()))] =
          std::string(field.value());
    }
    const std::string method = request.method;
    const unsigned version = message.version();
    const bool keep_alive = message.keep_alive();
    const bool has_body = !head_parser.is_done();
    request.request_id = sane_request_id(request.header("x-request-id"));
    if (request.request_id.empty()) request.request_id = new_request_id();
    info.request_id = request.request_id;
    info.method = method.substr(0, 16);
    info.bytes_in = head_end;
    Admission admission = admit(request, session.address);
    info.route = admission.route_label;
    if (admission.identity.authenticated) {
      if (admission.identity.role == Role::kUser) {
        info.caller = "user-token";
        info.caller_label = admission.identity.minted_by;
      } else {
        info.caller = admission.identity.actor;
        info.caller_label = admission.identity.label;
      }
    }
    if (!admission.answer && has_body && head_parser.content_length() &&
        *head_parser.content_length() > admission.body_limit) {
      admission.answer = problem(413, "request body exceeds the limit of " +
                                          std::to_string(admission.body_limit) + " bytes",
                                 "body");
    }
    if (admission.answer) {
      // Answered from the head: a body the client may still send is never read, so the
      // connection cannot be reused after it.
      Response& response = *admission.answer;
      metrics.observe(method, admission.route_label, response.status,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - received)
                          .count());
      const bool keep = keep_alive && !stopping && !has_body;
      if (!co_await write_response(stream, response, version, keep, info, received)) co_return;
      if (!keep) {
        if (has_body) co_await linger_and_close(lowest);
        co_return;
      }
      continue;
    }

    // 4. The body, for admitted callers only. A client that sent "Expect: 100-continue"
    //    (curl does for bodies over 1 KiB) waits for this interim answer (RFC 9110 10.1.1).
    if (has_body) {
      boost::system::error_code ec;
      if (beast::iequals(message[http::field::expect], "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, version};
        co_await http::async_write(stream, go_on, asio::redirect_error(use_awaitable, ec));
        if (ec) co_return;
      }
      http::request_parser<http::string_body> parser{std::move(head_parser)};
      parser.body_limit(admission.body_limit);
      co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted) {
        co_return;
      }
      if (ec) {
        // Too large (chunked) or malformed: answer once, then close (the stream position is
        // lost).
        Response response =
            ec == http::error::body_limit
                ? problem(413, "request body exceeds the limit of " +
                                   std::to_string(admission.body_limit) + " bytes",
                          "body")
                : problem(400, "malformed HTTP request body: " + ec.message(), "body");
        if (ec != http::error::body_limit) metrics.count_framing_error();
        metrics.observe(method, admission.route_label, response.status, 0.0);
        if (co_await write_response(stream, response, version, false, info, received)) {
          co_await linger_and_close(lowest);
        }
        co_return;
      }
      request.body = std::move(parser.get().body());
      info.bytes_in += request.body.size();
    }

    // 5. Dispatch and answer.
    std::string route_label = admission.route_label;
    Response response = co_await dispatch(admission, std::move(request));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count();
    metrics.observe(method, route_label, response.status, seconds);
    if (response.event_stream) {
      // A subscriber waiting for events is idle: shutdown closes it at once.
      session.busy = false;
      response.headers.emplace_back("X-Request-Id", info.request_id);
      if (tls()) response.headers.emplace_back("Strict-Transport-Security", "max-age=31536000");
      log_access(info, response.status, received, 0);
      co_await write_event_stream(stream, response, version, stopping, options.read_timeout);
      co_return;
    }
    const bool keep = keep_alive && !stopping;
    if (!co_await write_response(stream, response, version, keep, info, received)) co_return;
    if (!keep) co_return;
  }
}

void Server::Impl::log_access(const RequestLogInfo& info, int status,
                              std::chrono::steady_clock::time_point received,
                              std::uint64_t bytes_out) {
  if (!logs.access_enabled()) return;
  AccessLogLine line;
  line.request_id = info.request_id;
  line.method = info.method;
  line.route = info.route;
  line.client_address = info.client_address;
  line.caller = info.caller;
  line.caller_label = info.caller_label;
  line.status = status;
  line.duration_ms = std::chrono::duration<double, std::milli>(
                         std::chrono::steady_clock::now() - received)
                         .count();
  line.bytes_in = info.bytes_in;
  line.bytes_out = bytes_out;
  logs.access(line);
}

template <class Stream>
awaitable<bool> Server::Impl::write_response(Stream& stream, Response& response,
                                             unsigned version, bool keep_alive,
                                             const RequestLogInfo& info,
                                             std::chrono::steady_clock::time_point received) {
  // Problem bodies name the request, so a caller can quote it and the operator find it in
  // the logs.
  if (response.content_type == "application/problem+json" && !info.request_id.empty()) {
    auto document = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (document.is_object()) {
      document["request_id"] = info.request_id;
      response.body = document.dump();
    }
  }
  if (response.status >= 500) {
    auto document = nlohmann::json::parse(response.body, nullptr, false);
    std::string detail = document.is_object() && document.contains("detail") &&
                                 document["detail"].is_string()
                             ? document["detail"].get<std::string>()
                             : std::string();
    log.write(std::to_string(response.status) + " on " + info.method + " " + info.route +
                  (detail.empty() ? "" : ": " + detail),
              info.request_id);
  }
  // One gathered write of a head built here and the body as it is: no serializer state and
  // no copy of the body per request.
  if (status_has_no_body(response.status)) response.body.clear();
  const std::string head =
      response_head(response, version, keep_alive, info.request_id, tls());
  const std::uint64_t bytes_out = response.body.size();
  beast::get_lowest_layer(stream).expires_after(options.read_timeout);
  boost::system::error_code ec;
  const std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(response.body)};
  co_await asio::async_write(stream, wire, asio::redirect_error(use_awaitable, ec));
  log_access(info, response.status, received, bytes_out);
  co_return !ec;
}

awaitable<void> Server::Impl::linger_and_close(beast::tcp_stream& stream) {
  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  // At most a second and 1 MiB, discarded through one small scratch buffer.
  stream.expires_after(std::chrono::seconds(1));
  std::array<char, 4096> scratch;
  for (std::size_t discarded = 0; !ec && discarded < 1024 * 1024;) {
    discarded += co_await stream.async_read_some(asio::buffer(scratch),
                                                 asio::redirect_error(use_awaitable, ec));
  }
}

std::shared_ptr<asio::ssl::context> Server::Impl::current_tls() {
  std::lock_guard lock(tls_mutex);
  return tls_context;
}

void Server::Impl::reload_tls() {
  if (!tls()) return;
  std::string subject;
  auto context = make_tls_context(options.tls_cert_file, options.tls_key_file, &subject);
  if (!context.is_ok()) {
    logs.error("error", "tls_reload",
               "TLS certificate not reloaded, keeping the previous one: " +
                   context.status().message());
    return;
  }
  {
    std::lock_guard lock(tls_mutex);
    tls_context = std::move(*context);
  }
  logs.error("info", "tls_reload", "TLS certificate reloaded", {}, {{"subject", subject}});
}

Result<std::shared_ptr<asio::ssl::context>> make_tls_context(const std::string& cert_file,
                                                             const std::string& key_file,
                                                             std::string* subject) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  auto openssl_error = [](const std::string& what) {
    const unsigned long code = ERR_get_error();
    char text[256] = "unknown error";
    if (code != 0) ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    return Status(StatusCode::kInvalidArgument, what + ": " + text, "tls");
  };
  // TLS 1.2 and 1.3 only. For 1.2: forward secrecy and AEAD only (Mozilla "intermediate");
  // 1.3's suites are all AEAD with forward secrecy (OpenSSL's defaults).
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return openssl_error("cannot require TLS 1.2");
  }
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_ECDH_USE);
  if (SSL_CTX_set_cipher_list(native,
                              "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                              "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                              "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) {
    return openssl_error("cannot set the TLS 1.2 ciphers");
  }
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
    return openssl_error("cannot load the certificate chain " + cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return openssl_error("cannot load the private key " + key_file);
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return openssl_error("the private key " + key_file + " does not match " + cert_file);
  }
  if (subject) {
    subject->clear();
    if (X509* certificate = SSL_CTX_get0_certificate(native)) {
      char name[256];
      X509_NAME_oneline(X509_get_subject_name(certificate), name, sizeof name);
      *subject = name;
    }
  }
  return context;
}

}  // namespace fulcrum::api
