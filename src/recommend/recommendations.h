// The library face of recommendations (api-contract.md: generate_feature_recommendations)
// and a thread-safe holder that keeps one trained RecommendationModel in memory, so the
// HTTP layer trains once and serves each user in microseconds.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "core/trained_model_holder.h"
#include "recommend/recommendation_model.h"
#include "store/store.h"

namespace fulcrum {

// One-shot: loads the history up to clock.now(), trains, and ranks recommendations for the
// user. NotFound for an unknown user. Prefer RecommendationService when serving many users.
Result<std::vector<FeatureRecommendation>> generate_feature_recommendations(
    Store& store, const Clock& clock, const std::string& user_id,
    const RecommendOptions& options = {});

// JSON array of the recommendations' to_json(), in priority order.
nlohmann::json recommendations_to_json(const std::vector<FeatureRecommendation>& recommendations);

class RecommendationService {
 public:
  // `max_model_age`: for_user retrains when the model is older than this (by the clock).
  explicit RecommendationService(RecommendOptions options = {},
                                 UnixSeconds max_model_age = kSecondsPerDay)
      : options_(options), models_(max_model_age) {}

  // Retrains from the store's history up to `now` and swaps the model in atomically;
  // readers keep serving the old model meanwhile.
  Status refresh(Store& store, UnixSeconds now);

  // Recommendations from the current model (trained first if absent or stale). Users who
  // joined after training get cold-start recommendations for their tier; users the store
  // does not know are NotFound.
  Result<std::vector<FeatureRecommendation>> for_user(Store& store, const Clock& clock,
                                                      const std::string& user_id);

  // The current model, or null before the first refresh.
  std::shared_ptr<const RecommendationModel> model() const;
  // The current model, trained first when absent or stale (as for_user does).
  Result<std::shared_ptr<const RecommendationModel>> fresh_model(Store& store, const Clock& clock);

 private:
  TrainedModelHolder<RecommendationModel>::Train trainer(Store& store) const;

  RecommendOptions options_;
  TrainedModelHolder<RecommendationModel> models_;
};

}  // namespace fulcrum
