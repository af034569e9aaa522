// A read-through cache of parsed A/B tests and their JSON, for the hot read paths of the
// HTTP server (GET /ab-tests/{id} and assignment), so a request does not read, parse and
// re-serialize the stored document every time.
//
// Consistency: an entry is the stored document at a known version. Writers in this process
// call invalidate(test_id) after writing, so later reads here see the new version at once.
// Writers elsewhere (another replica on PostgreSQL, the CLI on the same SQLite file) are not
// seen immediately: an entry older than `revalidate_after` is checked against the stored
// version (one point read, no parse when unchanged) before it is used again. So a change
// made elsewhere is visible here within `revalidate_after` — the same kind of window as a
// request that read the document just before the change — while a hot test costs one store
// read per `revalidate_after` instead of one per request. A zero duration disables caching.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "experiments/experiment.h"
#include "store/store.h"

namespace fulcrum::experiments {

class ExperimentCache {
 public:
  struct Entry {
    Experiment experiment;  // test_id and version set
    std::string json;       // to_json(experiment).dump(): the GET /ab-tests/{id} body
  };

  explicit ExperimentCache(std::chrono::milliseconds revalidate_after);

  // The test as stored (kNotFound for an unknown id, as get_ab_test).
  Result<std::shared_ptr<const Entry>> get(Store& store, const std::string& test_id);
  // Drops the entry; call after writing the test's document through `store`.
  void invalidate(const std::string& test_id);

 private:
  struct Slot {
    std::shared_ptr<const Entry> entry;
    std::chrono::steady_clock::time_point checked;  // last time the version was confirmed
  };
  std::chrono::milliseconds revalidate_after_;
  std::mutex mutex_;
  std::unordered_map<std::string, Slot> slots_;
  // Bumped by invalidate(): a load that started before an invalidation is not cached, so a
  // slow reader cannot put back a version older than a write that finished meanwhile.
  std::uint64_t generation_ = 0;
};

}  // namespace fulcrum::experiments
