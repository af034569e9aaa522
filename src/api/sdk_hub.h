// Internal to the API: the SDK payload as served, compiled once per version of the
// documents it is built from (flags, A/B tests, SDK connection settings), shared by the
// payload route, the SSE stream, remote evaluation and OFREP.
//
// refresh() lists those documents; when any id or version differs from the last build, it
// rebuilds the payload (flags::build_payload), compiles it with the one evaluator
// (assign::CompiledFeatures), serialises it once per SDK key flavour (plain, or encrypted
// for keys with an encryption key) with an ETag, and wakes every subscriber (SSE streams).
// Writes through this server call refresh() at once; a poller thread calls it every
// `poll_interval`, so changes by another process or replica are seen within about that.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "assign/evaluator.h"
#include "core/time.h"
#include "flags/payload.h"
#include "store/store.h"

namespace fulcrum::api {

class SdkHub {
 public:
  struct Serialized {
    std::string body;       // the payload document (JSON text)
    std::string etag;       // "\"<hex>\""
    std::string sse_event;  // "event: features\ndata: <body>\n\n"
  };
  struct Snapshot {
    std::uint64_t generation = 0;
    flags::SdkPayload payload;
    std::optional<assign::CompiledFeatures> features;  // empty only if compiling failed
    std::string date_updated;
    Serialized plain;
    std::map<std::string, Serialized> encrypted;  // by SDK key id
    const Serialized& for_key(const std::string& key_id) const {
      auto it = encrypted.find(key_id);
      return it == encrypted.end() ? plain : it->second;
    }
  };

  SdkHub(Store& store, std::chrono::milliseconds poll_interval);
  ~SdkHub();  // stops the poller
  SdkHub(const SdkHub&) = delete;
  SdkHub& operator=(const SdkHub&) = delete;

  // First build, then the poller thread.
  void start();
  // Stops the poller (idempotent; the destructor calls it). The server calls it when it
  // stops, so no poll touches the store after the server is gone.
  void stop();
  // Re-reads the documents and rebuilds when they changed. Thread-safe.
  Status refresh();
  std::shared_ptr<const Snapshot> snapshot() const;

  // `wake` is called (from the refreshing thread) after every rebuild until unsubscribe.
  std::uint64_t subscribe(std::function<void()> wake);
  void unsubscribe(std::uint64_t id);
  std::size_t subscribers() const;

 private:
  Status rebuild(std::string fingerprint);

  Store& store_;
  std::chrono::milliseconds poll_interval_;
  std::mutex refresh_mutex_;  // one refresh at a time
  std::string fingerprint_;   // ids and versions of the last build's documents
  std::int64_t last_date_millis_ = 0;
  mutable std::mutex snapshot_mutex_;
  std::shared_ptr<const Snapshot> snapshot_;
  mutable std::mutex subscribers_mutex_;
  std::map<std::uint64_t, std::function<void()>> subscribers_;
  std::uint64_t next_subscriber_ = 1;
  std::mutex stop_mutex_;
  std::condition_variable stop_signal_;
  bool stop_ = false;
  std::thread poller_;
};

}  // namespace fulcrum::api
