#include "experiments/experiment_cache.h"

#include "experiments/service.h"

namespace fulcrum::experiments {

namespace {
// Bounds memory when many distinct ids are requested (e.g. an id-guessing client).
constexpr std::size_t kMaxEntries = 4096;
}  // namespace

ExperimentCache::ExperimentCache(std::chrono::milliseconds revalidate_after)
    : revalidate_after_(revalidate_after) {}

Result<std::shared_ptr<const ExperimentCache::Entry>> ExperimentCache::get(
    Store& store, const std::string& test_id) {
  const auto now = std::chrono::steady_clock::now();
  std::shared_ptr<const Entry> cached;
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    generation = generation_;
    auto it = slots_.find(test_id);
    if (it != slots_.end()) {
      if (now - it->second.checked < revalidate_after_) return it->second.entry;
      cached = it->second.entry;
    }
  }
  if (cached) {
    // Stale by age only: one point read tells whether someone else wrote meanwhile.
    auto doc = store.get_document(kDocumentKind, test_id);
    if (!doc.is_ok()) return doc.status();
    if (doc->has_value() && (*doc)->version == cached->experiment.version) {
      std::lock_guard lock(mutex_);
      auto it = slots_.find(test_id);
      if (generation_ == generation && it != slots_.end() && it->second.entry == cached) {
        it->second.checked = now;
      }
      return cached;
    }
  }
  auto loaded = get_ab_test(store, test_id);
  if (!loaded.is_ok()) {
    if (loaded.status().code() == StatusCode::kNotFound) invalidate(test_id);
    return loaded.status();
  }
  auto entry = std::make_shared<Entry>();
  entry->json = to_json(*loaded).dump();
  entry->experiment = std::move(*loaded);
  if (revalidate_after_.count() > 0) {
    std::lock_guard lock(mutex_);
    if (generation_ == generation) {
      if (slots_.size() >= kMaxEntries) slots_.clear();
      slots_[test_id] = Slot{entry, now};
    }
  }
  return std::shared_ptr<const Entry>(std::move(entry));
}

void ExperimentCache::invalidate(const std::string& test_id) {
  std::lock_guard lock(mutex_);
  ++generation_;
  slots_.erase(test_id);
}

}  // namespace fulcrum::experiments
