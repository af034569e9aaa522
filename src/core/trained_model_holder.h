// A trained model shared by request threads: swapped in atomically after training, so
// readers keep serving the previous model meanwhile; retrained when older than a maximum
// age; at most one training runs at a time. Used by the recommendation and upgrade-timing
// services. `Model` needs `UnixSeconds trained_at() const`.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "core/status.h"
#include "core/time.h"

namespace fulcrum {

template <typename Model>
class TrainedModelHolder {
 public:
  using Train = std::function<Result<Model>(UnixSeconds now)>;

  explicit TrainedModelHolder(UnixSeconds max_age) : max_age_(max_age) {}

  // Trains now and swaps the result in.
  Status refresh(UnixSeconds now, const Train& train) {
    std::lock_guard training(training_mutex_);
    return train_locked(now, train);
  }

  // The current model, trained first when there is none or it is older than max_age.
  Result<std::shared_ptr<const Model>> fresh(UnixSeconds now, const Train& train) {
    auto current = model();
    auto stale = [&] { return !current || now - current->trained_at() > max_age_; };
    if (stale()) {
      std::lock_guard training(training_mutex_);
      current = model();  // another caller may have retrained while this one waited
      if (stale()) {
        FULCRUM_RETURN_IF_ERROR(train_locked(now, train));
        current = model();
      }
    }
    return current;
  }

  // The current model, or null before the first training.
  std::shared_ptr<const Model> model() const {
    std::lock_guard lock(model_mutex_);
    return model_;
  }

 private:
  Status train_locked(UnixSeconds now, const Train& train) {
    auto trained = train(now);
    if (!trained.is_ok()) return trained.status();
    auto shared = std::make_shared<const Model>(std::move(trained).value());
    std::lock_guard lock(model_mutex_);
    model_ = std::move(shared);
    return Status::ok();
  }

  UnixSeconds max_age_;
  mutable std::mutex model_mutex_;  // guards model_
  std::mutex training_mutex_;       // one training at a time
  std::shared_ptr<const Model> model_;
};

}  // namespace fulcrum
