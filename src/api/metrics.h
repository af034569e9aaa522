// Prometheus metrics of the HTTP server: request counts and latency histograms labelled by
// route pattern (never the raw path, which would make label cardinality unbounded), method
// and status, rendered in the text exposition format for GET /metrics.
#pragma once

#include <memory>
#include <string>

namespace fulcrum::api {

class HttpMetrics {
 public:
  HttpMetrics();
  ~HttpMetrics();
  void observe(const std::string& method, const std::string& route, int status,
               double seconds);
  void set_in_flight(double connections);
  std::string render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fulcrum::api
