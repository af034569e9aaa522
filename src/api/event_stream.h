// Server-Sent Events responses (https://html.spec.whatwg.org/multipage/server-sent-events.html)
// without a thread per connection: a handler returns a Response whose `event_stream` is an
// EventStream; the server writes the status line and headers, then runs a small coroutine
// on the connection's strand that sleeps until the stream calls `wake`, writes what poll()
// returns, and sends a comment line as heartbeat when nothing happened for heartbeat(), so
// proxies keep the connection and a vanished client is noticed. Thousands of idle
// subscribers cost one suspended coroutine and one timer each.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace fulcrum::api {

class EventStream {
 public:
  virtual ~EventStream() = default;
  // Called once, before the first poll(), with a function that may be called from any
  // thread, any number of times, until this stream is destroyed: it schedules a poll().
  virtual void start(std::function<void()> wake) = 0;
  // The SSE text to send now ("event: features\ndata: {...}\n\n"), empty when nothing is
  // new. The first call after start() returns the initial events, if any.
  virtual std::string poll() = 0;
  virtual std::chrono::milliseconds heartbeat() const { return std::chrono::seconds(15); }
};

// One SSE event: "event: <name>\n" (when name is not empty), one "data: " line per line of
// `data`, then a blank line.
std::string format_sse_event(std::string_view name, std::string_view data);

}  // namespace fulcrum::api
