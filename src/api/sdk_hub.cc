// Built only with the flags and experiments engines (see routes_flags.cc).
#if defined(FULCRUM_HAVE_FLAGS) && defined(FULCRUM_HAVE_EXPERIMENTS)
#include "api/sdk_hub.h"

#include <iostream>
#include <vector>

#include "api/event_stream.h"
#include "core/ids.h"
#include "experiments/service.h"
#include "flags/service.h"

namespace fulcrum::api {

SdkHub::SdkHub(Store& store, std::chrono::milliseconds poll_interval)
    : store_(store), poll_interval_(poll_interval) {}

SdkHub::~SdkHub() { stop(); }

void SdkHub::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    stop_ = true;
  }
  stop_signal_.notify_all();
  if (poller_.joinable()) poller_.join();
}

void SdkHub::start() {
  Status first = refresh();
  if (!first.is_ok()) std::cerr << "fulcrum api: SDK payload: " << first.to_string() << "\n";
  if (poll_interval_.count() <= 0) return;
  poller_ = std::thread([this] {
    std::unique_lock lock(stop_mutex_);
    while (!stop_signal_.wait_for(lock, poll_interval_, [this] { return stop_; })) {
      lock.unlock();
      Status refreshed = refresh();
      if (!refreshed.is_ok()) {
        std::cerr << "fulcrum api: SDK payload refresh: " << refreshed.to_string() << "\n";
      }
      lock.lock();
    }
  });
}

Status SdkHub::refresh() {
  std::lock_guard lock(refresh_mutex_);
  std::string fingerprint;
  for (const char* kind : {flags::kFlagDocumentKind, experiments::kDocumentKind,
                           flags::kSdkConnectionKind, experiments::kHoldoutDocumentKind}) {
    auto docs = store_.list_documents(kind);
    if (!docs) return docs.status();
    fingerprint += kind;
    fingerprint += '\n';
    for (const Document& doc : *docs) {
      fingerprint += doc.id;
      fingerprint += ' ';
      fingerprint += std::to_string(doc.version);
      fingerprint += '\n';
    }
  }
  if (snapshot() && fingerprint == fingerprint_) return Status::ok();
  return rebuild(std::move(fingerprint));
}

Status SdkHub::rebuild(std::string fingerprint) {
  auto flag_list = flags::list_flags(store_, /*include_archived=*/true);
  if (!flag_list) return flag_list.status();
  auto tests = experiments::list_ab_tests(store_);
  if (!tests) return tests.status();
  auto connections = flags::list_sdk_connections(store_);
  if (!connections) return connections.status();
  auto holdouts = experiments::list_holdouts(store_);
  if (!holdouts) return holdouts.status();

  auto next = std::make_shared<Snapshot>();
  next->payload = flags::build_payload(*flag_list, *tests, *holdouts);
  auto compiled = assign::CompiledFeatures::compile(next->payload.features);
  if (compiled.is_ok()) {
    next->features = std::move(*compiled);
  } else {
    // Flags are validated when saved, so this means a bug; serve the previous evaluator.
    std::cerr << "fulcrum api: SDK payload does not compile: " << compiled.status().to_string()
              << "\n";
    if (auto previous = snapshot()) next->features = previous->features;
  }
  // dateUpdated must change whenever the payload does: the SDKs ignore a payload whose
  // dateUpdated equals the one they hold (feature-repository onNewFeatureData).
  const std::int64_t date_millis =
      std::max<std::int64_t>(next->payload.last_change * 1000, last_date_millis_ + 1);
  last_date_millis_ = date_millis;
  next->date_updated = flags::format_iso8601_millis(date_millis);

  auto serialize = [&](const std::optional<std::string>& key) -> Result<Serialized> {
    auto document = flags::payload_document(next->payload, next->date_updated, key);
    if (!document) return document.status();
    Serialized out;
    out.body = document->dump();
    out.etag = "\"" + sha256_hex(out.body).substr(0, 32) + "\"";
    out.sse_event = format_sse_event("features", out.body);
    return out;
  };
  auto plain = serialize(std::nullopt);
  if (!plain) return plain.status();
  next->plain = std::move(*plain);
  for (const flags::SdkConnection& connection : *connections) {
    if (!connection.encryption_key) continue;
    auto encrypted = serialize(connection.encryption_key);
    if (!encrypted) return encrypted.status();
    next->encrypted[connection.key_id] = std::move(*encrypted);
  }
  {
    std::lock_guard lock(snapshot_mutex_);
    next->generation = snapshot_ ? snapshot_->generation + 1 : 1;
    snapshot_ = std::move(next);
  }
  fingerprint_ = std::move(fingerprint);
  std::vector<std::function<void()>> wakes;
  {
    std::lock_guard lock(subscribers_mutex_);
    for (const auto& [id, wake] : subscribers_) wakes.push_back(wake);
  }
  for (const auto& wake : wakes) wake();
  return Status::ok();
}

std::shared_ptr<const SdkHub::Snapshot> SdkHub::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

std::uint64_t SdkHub::subscribe(std::function<void()> wake) {
  std::lock_guard lock(subscribers_mutex_);
  const std::uint64_t id = next_subscriber_++;
  subscribers_.emplace(id, std::move(wake));
  return id;
}

void SdkHub::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(subscribers_mutex_);
  subscribers_.erase(id);
}

std::size_t SdkHub::subscribers() const {
  std::lock_guard lock(subscribers_mutex_);
  return subscribers_.size();
}

}  // namespace fulcrum::api

#endif
