// Prometheus metrics of the HTTP server: request counts and latency histograms labelled by
// method, route pattern and status, rendered in the text exposition format for GET /metrics.
// Every label comes from a closed set, so no request can add series: methods are the RFC
// 9110 ones (anything else is "other"), routes are the route table's patterns or the fixed
// labels "static", "other" (nothing matched) and "unparsed" (framing errors), statuses are
// 100..599 (else "other"). The series count is therefore bounded by the route table, and so
// is the time /metrics takes to render. Security counters (failed authentications, rate
// limited calls, refused connections, framing errors, accept errors) sit beside them.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace fulcrum::api {

class HttpMetrics {
 public:
  HttpMetrics();
  ~HttpMetrics();
  // `route` must be a route pattern or one of the fixed labels above (the server's
  // responsibility); `method` may be anything the client sent.
  void observe(std::string_view method, const std::string& route, int status, double seconds);
  void set_in_flight(double connections);
  // A credential was presented and refused (unknown, revoked, malformed, expired).
  void count_auth_failure();
  // A call refused with 429; reason is "auth_failures".
  void count_rate_limited(std::string_view reason);
  // A connection closed at accept; reason "global_limit" or "address_limit".
  void count_refused_connection(std::string_view reason);
  // A request refused for its framing (RFC 9112) or its head size.
  void count_framing_error();
  // accept() failed (e.g. EMFILE); the loop backed off.
  void count_accept_error();
  std::string render() const;

  // The label `method` gets: itself when it is a standard method, otherwise "other".
  static std::string_view method_label(std::string_view method);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fulcrum::api
