// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>
// GCC 12 flags asio's coroutine frame allocator as mismatched (see server.cc).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "api/event_stream.h"

#include <memory>

#include "api/event_stream_io.h"

namespace fulcrum::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;

std::string format_sse_event(std::string_view name, std::string_view data) {
  std::string out;
  out.reserve(data.size() + name.size() + 16);
  if (!name.empty()) {
    out += "event: ";
    out += name;
    out += '\n';
  }
  for (;;) {
    const std::size_t newline = data.find('\n');
    out += "data: ";
    out += data.substr(0, newline);
    out += '\n';
    if (newline == std::string_view::npos) break;
    data.remove_prefix(newline + 1);
  }
  out += '\n';
  return out;
}

namespace {

// Shared by the writer loop, the reader that notices a closed connection and the wake
// function handed to the EventStream (which may outlive the connection: it holds a weak
// reference). Everything here is touched on the connection's strand only.
struct StreamState {
  explicit StreamState(const asio::any_io_executor& executor) : wake(executor), reader(executor) {}
  asio::steady_timer wake;    // cancelled to wake the writer
  asio::steady_timer reader;  // cancelled when the reader has finished
  bool pending = false;       // a wake arrived since the last poll
  bool closed = false;        // the client went away (or the socket was cancelled)
  bool reader_done = false;
};

// Reads (and discards) whatever the client sends until the connection fails or closes, so
// a vanished client or the server's shutdown (which cancels the socket) ends the stream.
awaitable<void> read_until_closed(beast::tcp_stream& stream, std::shared_ptr<StreamState> state) {
  char scratch[512];
  for (;;) {
    boost::system::error_code ec;
    co_await stream.socket().async_read_some(asio::buffer(scratch),
                                             asio::redirect_error(use_awaitable, ec));
    if (ec) break;
  }
  state->closed = true;
  state->reader_done = true;
  state->wake.cancel();
  state->reader.cancel();
}

}  // namespace

template <class Stream>
awaitable<void> write_event_stream(Stream& stream, Response& response, unsigned http_version,
                                   const std::atomic<bool>& stopping,
                                   std::chrono::milliseconds write_timeout) {
  beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
  auto executor = co_await asio::this_coro::executor;
  const bool chunked = http_version >= 11;
  http::response<http::empty_body> head{static_cast<http::status>(response.status), http_version};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.set("X-Accel-Buffering", "no");  // nginx and similar proxies must not buffer events
  for (const auto& [name, value] : response.headers) head.set(name, value);
  head.keep_alive(true);
  if (chunked) head.chunked(true);
  http::response_serializer<http::empty_body> serializer{head};
  boost::system::error_code ec;
  lowest.expires_after(write_timeout);
  co_await http::async_write_header(stream, serializer, asio::redirect_error(use_awaitable, ec));
  lowest.expires_never();
  if (ec) co_return;

  auto state = std::make_shared<StreamState>(executor);
  std::shared_ptr<EventStream> events = response.event_stream;
  events->start([weak = std::weak_ptr<StreamState>(state), executor] {
    asio::post(executor, [weak] {
      if (auto alive = weak.lock()) {
        alive->pending = true;
        alive->wake.cancel();
      }
    });
  });
  // On TLS the reader watches the TCP socket under the TLS layer: it only has to notice
  // the connection closing, and the writer never reads (renegotiation is off).
  asio::co_spawn(executor, read_until_closed(lowest, state), asio::detached);

  auto send = [&](const std::string& text) -> awaitable<bool> {
    boost::system::error_code write_ec;
    lowest.expires_after(write_timeout);
    if (chunked) {
      co_await asio::async_write(stream, http::make_chunk(asio::buffer(text)),
                                 asio::redirect_error(use_awaitable, write_ec));
    } else {
      co_await asio::async_write(stream, asio::buffer(text),
                                 asio::redirect_error(use_awaitable, write_ec));
    }
    lowest.expires_never();
    co_return !write_ec;
  };

  while (!state->closed && !stopping) {
    state->pending = false;
    const std::string text = events->poll();
    if (!text.empty() && !co_await send(text)) break;
    if (state->pending || state->closed) continue;
    state->wake.expires_after(events->heartbeat());
    boost::system::error_code wait_ec;
    co_await state->wake.async_wait(asio::redirect_error(use_awaitable, wait_ec));
    if (!wait_ec && !state->closed && !state->pending) {
      if (!co_await send(": heartbeat\n\n")) break;
    }
  }
  // Stop the reader and wait for it: it refers to `stream`, which the caller destroys next.
  boost::system::error_code ignored;
  lowest.socket().cancel(ignored);
  while (!state->reader_done) {
    state->reader.expires_after(std::chrono::seconds(5));
    co_await state->reader.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
}

template awaitable<void> write_event_stream<beast::tcp_stream>(
    beast::tcp_stream&, Response&, unsigned, const std::atomic<bool>&, std::chrono::milliseconds);
template awaitable<void> write_event_stream<beast::ssl_stream<beast::tcp_stream>>(
    beast::ssl_stream<beast::tcp_stream>&, Response&, unsigned, const std::atomic<bool>&,
    std::chrono::milliseconds);

}  // namespace fulcrum::api
