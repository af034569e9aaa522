#include "api/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

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

  // The series of one (method, route, status): looked up once, then reused. Family::Add
  // builds a label map and constructs a throwaway metric on every call, which showed up in
  // per-request profiles. Bounded like the families: routes x methods x statuses.
  struct Series {
    prometheus::Counter* requests;
    prometheus::Histogram* latency;
  };
  std::mutex series_mutex;
  std::unordered_map<std::string, Series> series;
};

HttpMetrics::HttpMetrics() : impl_(std::make_unique<Impl>()) {}
HttpMetrics::~HttpMetrics() = default;

void HttpMetrics::observe(const std::string& method, const std::string& route, int status,
                          double seconds) {
  std::string key;
  key.reserve(method.size() + route.size() + 6);
  key.append(method).push_back('\n');
  key.append(route).push_back('\n');
  key.append(std::to_string(status));
  Impl::Series series{};
  {
    std::lock_guard lock(impl_->series_mutex);
    auto found = impl_->series.find(key);
    if (found == impl_->series.end()) {
      const std::string status_text = std::to_string(status);
      const prometheus::Labels labels = {
          {"method", method}, {"route", route}, {"status", status_text}};
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

std::string HttpMetrics::render() const {
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace fulcrum::api
