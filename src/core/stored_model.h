// A trained model shared by request threads and by the replicas of one store.
//
// StoredModelHolder keeps the model it serves in memory (swapped in atomically, so readers
// keep serving the previous one meanwhile) and, when given a ModelStore, shares it: when
// its model is missing or stale it first loads the stored model, and trains only when no
// usable stored model exists, under the store's training lease so two replicas do not both
// train; what it trains it stores. A stored model is usable when its format version and
// options fingerprint are this build's, its payload's SHA-256 matches the recorded one, it
// decodes, and it is at most max_age old. Anything else is refused with a log line, and the
// replica trains and overwrites it.
//
// The holder knows the store only through ModelStore (src/store/model_document_store.h
// adapts the document store to it); a Model knows its serialised form only through the
// ModelCodec it is given. `Model` needs `UnixSeconds trained_at() const`.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace fulcrum {

// A model's stored form: its payload (the codec's bytes) and what decides whether a replica
// may serve it.
struct StoredModel {
  std::string name;                 // e.g. "recommendations"
  int format_version = 0;           // of the payload layout
  std::string options_fingerprint;  // of the training options (two models are comparable)
  UnixSeconds trained_at = 0;
  std::string content_sha256;  // lowercase hex SHA-256 of payload
  std::string payload;
  std::int64_t store_version = 0;  // the store's version of the record (0: not stored)
  UnixSeconds store_updated_at = 0;  // when the record was written
};

// Which write of a stored record a replica holds: the version, and the write time because
// a record erased and written again starts over at version 1.
struct StoredRecord {
  std::int64_t version = 0;
  UnixSeconds updated_at = 0;
  bool operator==(const StoredRecord&) const = default;
};

// Where models are shared between processes. Implementations are thread-safe.
class ModelStore {
 public:
  virtual ~ModelStore() = default;
  // The stored model of `name`, nullopt when none. A record that cannot be read as a model
  // at all (not the store's envelope) is kInvalidArgument; the holder verifies the rest.
  virtual Result<std::optional<StoredModel>> load(const std::string& name) = 0;
  // Which write of `name` is stored, without reading the model (nullopt when none): the
  // periodic recheck reads the model only when this moved.
  virtual Result<std::optional<StoredRecord>> stored_record(const std::string& name) = 0;
  // Stores `model` in place of whatever is stored under its name; returns the new version.
  virtual Result<std::int64_t> save(const StoredModel& model, UnixSeconds now) = 0;
  // Takes the training lease of `name` until `until`; true when this process holds it (also
  // when it held it already), false when another holder's lease is unexpired at `now`.
  virtual Result<bool> acquire_training_lease(const std::string& name, UnixSeconds now,
                                              UnixSeconds until) = 0;
  virtual Status release_training_lease(const std::string& name) = 0;
};

// How one model type is serialised.
template <typename Model>
struct ModelCodec {
  std::string name;
  int format_version = 1;
  std::string options_fingerprint;
  std::function<std::string(const Model&)> encode;
  std::function<Result<Model>(std::string_view payload)> decode;
};

// Which model a holder serves (for /metrics and job details).
struct ServedModel {
  std::string name;
  std::string content_sha256;
  int format_version = 0;
  std::string options_fingerprint;
  UnixSeconds trained_at = 0;
  std::string source;  // "trained" (here) or "loaded" (from the store)
  std::int64_t store_version = 0;
};

// {"model", "content_sha256", "format_version", "options_fingerprint", "trained_at" (ISO
// 8601), "source", "store_version"}.
nlohmann::json to_json(const ServedModel& served);
// Prometheus text: fulcrum_model_info{model,sha256,format_version,options,source} 1 and
// fulcrum_model_trained_timestamp_seconds{model}, one series each per served model (a
// model's labels change when it is replaced, so the series count stays one per model).
std::string render_served_model_metrics(const std::vector<ServedModel>& served);

struct StoredModelHolderOptions {
  UnixSeconds max_age = kSecondsPerDay;  // older models are retrained (or reloaded)
  // How long a replica's training may take before another may take over its lease.
  UnixSeconds training_lease_seconds = 3600;
  // A holder whose model is fresh still looks for a newer stored one this often, so a model
  // the retraining job stored on one replica reaches the others within this time.
  UnixSeconds recheck_seconds = 900;
  // A holder without any model, while another replica holds the training lease, polls the
  // store this often and this many times (10 s by default) for that replica's model, then
  // answers kUnavailable (HTTP 503 with Retry-After) instead of holding a worker thread for
  // the other's whole training; a later call looks again. If the other replica died, its
  // lease expires after training_lease_seconds and the next call here trains.
  std::chrono::milliseconds wait_poll{500};
  int wait_polls = 20;
  // Where refusals and store errors are logged (default: standard error).
  std::function<void(std::string_view line)> log;
};

// The defaults with another max_age.
inline StoredModelHolderOptions holder_options_with_max_age(UnixSeconds max_age) {
  StoredModelHolderOptions options;
  options.max_age = max_age;
  return options;
}

// The checks a stored model must pass before it is decoded: empty when usable, else the
// reason it is refused.
std::string refuse_stored_model(const StoredModel& stored, std::string_view name,
                                int format_version, std::string_view options_fingerprint,
                                UnixSeconds now, UnixSeconds max_age);
// A StoredModel of `payload` with its hash filled in.
StoredModel make_stored_model(std::string name, int format_version, std::string options_fingerprint,
                              UnixSeconds trained_at, std::string payload);
// Writes one line to standard error with the holder's prefix.
void log_model_line(std::string_view line);

template <typename Model>
class StoredModelHolder {
 public:
  using Train = std::function<Result<Model>(UnixSeconds now)>;

  StoredModelHolder(ModelCodec<Model> codec, StoredModelHolderOptions options)
      : codec_(std::move(codec)), options_(std::move(options)) {
    if (!options_.log) options_.log = log_model_line;
  }

  // Trains now, stores the result (when `store` is given) and swaps it in. The retraining
  // job calls this; it runs under the job's own lease, so it does not take the training one.
  Status refresh(UnixSeconds now, const Train& train, ModelStore* store) {
    std::lock_guard training(training_mutex_);
    return train_locked(now, train, store);
  }

  // The current model. When there is none or it is older than max_age: the stored model if
  // usable, else one trained here (under the training lease) and stored.
  Result<std::shared_ptr<const Model>> fresh(UnixSeconds now, const Train& train,
                                             ModelStore* store) {
    auto current = model();
    if (!stale(current, now)) {
      if (store != nullptr && recheck_due(now)) recheck(now, store);
      return model();
    }
    std::lock_guard training(training_mutex_);
    current = model();  // another caller may have retrained while this one waited
    if (!stale(current, now)) return current;
    if (store == nullptr) {
      FULCRUM_RETURN_IF_ERROR(train_locked(now, train, nullptr));
      return model();
    }
    if (load_locked(now, store)) return model();
    auto lease =
        store->acquire_training_lease(codec_.name, now, now + options_.training_lease_seconds);
    if (!lease.is_ok()) {
      options_.log(codec_.name + ": training lease: " + lease.status().to_string());
    } else if (!*lease) {
      // Another replica trains. A stale model is still a model: serve it until theirs is
      // stored. Without one, wait for theirs (bounded), then say so.
      if (current) return current;
      for (int poll = 0; poll < options_.wait_polls; ++poll) {
        std::this_thread::sleep_for(options_.wait_poll);
        if (load_locked(now, store)) return model();
      }
      return Status(StatusCode::kUnavailable,
                    "the " + codec_.name +
                        " model is being trained by another replica; try again shortly");
    }
    Status trained = train_locked(now, train, store);
    if (lease.is_ok() && *lease) {
      Status released = store->release_training_lease(codec_.name);
      if (!released.is_ok()) {
        options_.log(codec_.name + ": releasing the training lease: " + released.to_string());
      }
    }
    FULCRUM_RETURN_IF_ERROR(trained);
    return model();
  }

  // The current model, or null before the first training or load.
  std::shared_ptr<const Model> model() const {
    std::lock_guard lock(model_mutex_);
    return model_;
  }
  // What is served, nullopt before the first training or load.
  std::optional<ServedModel> served() const {
    std::lock_guard lock(model_mutex_);
    return served_;
  }
  // Trainings this holder ran (tests use it to prove a replica loaded instead).
  int trainings() const {
    std::lock_guard lock(model_mutex_);
    return trainings_;
  }
  const ModelCodec<Model>& codec() const { return codec_; }

 private:
  bool stale(const std::shared_ptr<const Model>& current, UnixSeconds now) const {
    return !current || now - current->trained_at() > options_.max_age;
  }

  bool recheck_due(UnixSeconds now) {
    std::lock_guard lock(model_mutex_);
    return now - last_store_check_ >= options_.recheck_seconds;
  }

  // A newer usable stored model replaces a fresh one; one request does the check while the
  // others keep serving (try_lock), and a failure only costs the check.
  void recheck(UnixSeconds now, ModelStore* store) {
    std::unique_lock training(training_mutex_, std::try_to_lock);
    if (!training.owns_lock()) return;
    load_locked(now, store);
  }

  // Swaps in the stored model when it is usable and newer than the one served; true when
  // the holder then serves a fresh model from the store.
  bool load_locked(UnixSeconds now, ModelStore* store) {
    {
      std::lock_guard lock(model_mutex_);
      last_store_check_ = now;
    }
    // The record served already (same version): skip reading and hashing tens of MB.
    auto record = store->stored_record(codec_.name);
    if (!record.is_ok()) {
      options_.log(codec_.name + ": checking the stored model: " + record.status().to_string());
      return false;
    }
    if (!record->has_value()) return false;
    {
      std::lock_guard lock(model_mutex_);
      if (served_record_ && *served_record_ == **record) return !stale(model_, now);
    }
    auto loaded = store->load(codec_.name);
    if (!loaded.is_ok()) {
      options_.log(codec_.name + ": loading the stored model: " + loaded.status().to_string());
      return false;
    }
    if (!loaded->has_value()) return false;
    const StoredModel& stored = **loaded;
    auto current = served();
    if (current && current->content_sha256 == stored.content_sha256) {
      return !stale(model(), now);  // already serving it
    }
    std::string refused = refuse_stored_model(stored, codec_.name, codec_.format_version,
                                              codec_.options_fingerprint, now, options_.max_age);
    if (refused == "stale") return false;  // an old model is not corrupt: retrain quietly
    if (!refused.empty()) {
      options_.log(codec_.name + ": refusing the stored model (" + refused + "); retraining");
      return false;
    }
    if (current && stored.trained_at <= current->trained_at) return false;
    auto decoded = codec_.decode(stored.payload);
    if (!decoded.is_ok()) {
      options_.log(codec_.name + ": refusing the stored model (" + decoded.status().to_string() +
                   "); retraining");
      return false;
    }
    auto shared = std::make_shared<const Model>(std::move(decoded).value());
    if (shared->trained_at() != stored.trained_at) {
      options_.log(codec_.name +
                   ": refusing the stored model (trained_at disagrees with its "
                   "payload); retraining");
      return false;
    }
    std::lock_guard lock(model_mutex_);
    model_ = std::move(shared);
    served_ = ServedModel{codec_.name,           stored.content_sha256,
                          stored.format_version, stored.options_fingerprint,
                          stored.trained_at,     "loaded",
                          stored.store_version};
    served_record_ = StoredRecord{stored.store_version, stored.store_updated_at};
    return true;
  }

  Status train_locked(UnixSeconds now, const Train& train, ModelStore* store) {
    auto trained = train(now);
    if (!trained.is_ok()) return trained.status();
    auto shared = std::make_shared<const Model>(std::move(trained).value());
    StoredModel stored =
        make_stored_model(codec_.name, codec_.format_version, codec_.options_fingerprint,
                          shared->trained_at(), codec_.encode(*shared));
    if (store != nullptr) {
      // A model that cannot be stored is still served here; the next stale check retries.
      auto saved = store->save(stored, now);
      if (saved.is_ok()) {
        stored.store_version = *saved;
        stored.store_updated_at = now;
      } else {
        options_.log(codec_.name + ": storing the trained model: " + saved.status().to_string());
      }
    }
    std::lock_guard lock(model_mutex_);
    model_ = std::move(shared);
    served_ = ServedModel{codec_.name,           stored.content_sha256,
                          stored.format_version, stored.options_fingerprint,
                          stored.trained_at,     "trained",
                          stored.store_version};
    served_record_ = stored.store_version != 0
                         ? std::optional<StoredRecord>(
                               StoredRecord{stored.store_version, stored.store_updated_at})
                         : std::nullopt;
    last_store_check_ = now;
    ++trainings_;
    return Status::ok();
  }

  ModelCodec<Model> codec_;
  StoredModelHolderOptions options_;
  mutable std::mutex model_mutex_;  // guards model_, served_(_record_), trainings_,
                                    // last_store_check_
  std::mutex training_mutex_;       // one training or load at a time
  std::shared_ptr<const Model> model_;
  std::optional<ServedModel> served_;
  std::optional<StoredRecord> served_record_;  // the store's record of model_, if stored
  int trainings_ = 0;
  UnixSeconds last_store_check_ = 0;
};

}  // namespace fulcrum
