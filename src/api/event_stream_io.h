// Internal to the server: writes a streaming (Server-Sent Events) response on a Beast
// stream. Separate from server.cc so the streaming machinery stays in one place.
#pragma once

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it.

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/beast/ssl.hpp>

#include "api/http.h"

namespace fulcrum::api {

// Writes `response`'s status and headers (chunked transfer encoding), then its event stream
// until the client disconnects, a write fails or `stopping` becomes true (checked whenever
// the stream wakes; the server's shutdown also cancels the socket). Runs on the calling
// coroutine's executor (the connection's strand). Stream: beast::tcp_stream or
// beast::ssl_stream<beast::tcp_stream> (both instantiated in event_stream.cc).
template <class Stream>
boost::asio::awaitable<void> write_event_stream(Stream& stream,
                                                Response& response, unsigned http_version,
                                                const std::atomic<bool>& stopping,
                                                std::chrono::milliseconds write_timeout);

}  // namespace fulcrum::api
