#include "api/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <mutex>
#include <unordered_map>

namespace fulcrum::api {

struct HttpMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("fulcrum_http_requests_total")
          .Help("HTTP requests served, by method, route pattern and status")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& latency =
      prometheus::BuildHistogram()
          .Name("fulcrum_http_request_duration_seconds")
          .Help("Time from a complete request to its response being ready, in seconds")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& connections =
      prometheus::BuildGauge()
          .Name("fulcrum_http_open_connections")
          .Help("Client connections currently open")
          .Register(*registry);
  prometheus::Gauge& open_connections = connections.Add({});
  prometheus::Family<prometheus::Counter>& auth_failures_family =
      prometheus::BuildCounter()
          .Name("fulcrum_http_auth_failures_total")
          .Help("Requests whose credential was refused (unknown, revoked or malformed)")
          .Register(*registry);
  prometheus::Counter& auth_failures = auth_failures_family.Add({});
  prometheus::Family<prometheus::Counter>& rate_limited =
      prometheus::BuildCounter()
          .Name("fulcrum_http_rate_limited_total")
          .Help("Requests refused with 429, by reason")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& refused_connections =
      prometheus::BuildCounter()
          .Name("fulcrum_http_refused_connections_total")
          .Help("Connections closed at accept because a connection limit was reached")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& framing_family =
      prometheus::BuildCounter()
          .Name("fulcrum_http_framing_errors_total")
          .Help("Requests refused for malformed or ambiguous framing (RFC 9112); connection "
                "closed")
          .Register(*registry);
  prometheus::Counter& framing_errors = framing_family.Add({});
  prometheus::Family<prometheus::Counter>& accept_family =
      prometheus::BuildCounter()
          .Name("fulcrum_http_accept_errors_total")
          .Help("accept() failures (e.g. out of file descriptors); the loop backs off")
          .Register(*registry);
  prometheus::Counter& accept_errors = accept_family.Add({});

  // The series of one (method, route, status): looked up once, then reused. Family::Add
  // builds a label map and constructs a throwaway metric on every call, which showed up in
  // per-request profiles. Bounded like the labels: routes x methods x statuses.
  struct Series {
    prometheus::Counter* requests;
    prometheus::Histogram* latency;
  };
  std::mutex series_mutex;
  std::unordered_map<std::string, Series> series;
};

std::string_view HttpMetrics::method_label(std::string_view method) {
  static constexpr std::array<std::string_view, 9> kMethods = {
      "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"};
  for (std::string_view known : kMethods) {
    if (method == known) return known;
  }
  return "other";
}

HttpMetrics::HttpMetrics() : impl_(std::make_unique<Impl>()) {}
HttpMetrics::~HttpMetrics() = default;

void HttpMetrics::observe(std::string_view raw_method, const std::string& route, int status,
                          double seconds) {
  const std::string_view method = method_label(raw_method);
  const std::string status_text =
      status >= 100 && status <= 599 ? std::to_string(status) : std::string("other");
  std::string key;
  key.reserve(method.size() + route.size() + 6);
  key.append(method).push_back('\n');
  key.append(route).push_back('\n');
  key.append(status_text);
  Impl::Series series{};
  {
    std::lock_guard lock(impl_->series_mutex);
    auto found = impl_->series.find(key);
    if (found == impl_->series.end()) {
      const prometheus::Labels labels = {
          {"method", std::string(method)}, {"route", route}, {"status", status_text}};
      // Buckets from 100 microseconds to 10 seconds: engine analyses can take seconds.
      static const prometheus::Histogram::BucketBoundaries kBuckets = {
          0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,      2.5,     5,      10};
      found = impl_->series
                  .emplace(std::move(key), Impl::Series{&impl_->requests.Add(labels),
                                                        &impl_->latency.Add(labels, kBuckets)})
                  .first;
    }
    series = found->second;
  }
  series.requests->Increment();
  series.latency->Observe(seconds);
}

void HttpMetrics::set_in_flight(double connections) { impl_->open_connections.Set(connections); }
void HttpMetrics::count_auth_failure() { impl_->auth_failures.Increment(); }
void HttpMetrics::count_rate_limited(std::string_view reason) {
  impl_->rate_limited.Add({{"reason", std::string(reason)}}).Increment();
}
void HttpMetrics::count_refused_connection(std::string_view reason) {
  impl_->refused_connections.Add({{"reason", std::string(reason)}}).Increment();
}
void HttpMetrics::count_framing_error() { impl_->framing_errors.Increment(); }
void HttpMetrics::count_accept_error() { impl_->accept_errors.Increment(); }

std::string HttpMetrics::render() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace fulcrum::api
