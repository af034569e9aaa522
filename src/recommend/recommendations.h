// The library face of recommendations (api-contract.md: generate_feature_recommendations)
// and a thread-safe service that keeps one trained RecommendationModel in memory, so the
// HTTP layer trains once and serves each user in microseconds. The model is shared through
// the store (core/stored_model.h): a replica loads the model another one stored instead of
// training its own.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "core/stored_model.h"
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

// The codec that stores RecommendationModels trained with `options` (name "recommendations").
ModelCodec<RecommendationModel> recommendation_model_codec(const RecommendOptions& options);

class RecommendationService {
 public:
  // `max_model_age`: for_user retrains (or reloads) when the model is older than this.
  explicit RecommendationService(RecommendOptions options = {},
                                 UnixSeconds max_model_age = kSecondsPerDay)
      : RecommendationService(options, holder_options_with_max_age(max_model_age)) {}
  RecommendationService(RecommendOptions options, StoredModelHolderOptions holder_options,
                        bool share_through_store = true);

  // Retrains from the store's history up to `now`, stores the model and swaps it in
  // atomically; readers keep serving the old model meanwhile.
  Status refresh(Store& store, UnixSeconds now);

  // Recommendations from the current model (loaded from the store or trained first if
  // absent or stale). Users who joined after training get cold-start recommendations for
  // their tier; users the store does not know are NotFound.
  Result<std::vector<FeatureRecommendation>> for_user(Store& store, const Clock& clock,
                                                      const std::string& user_id);

  // The current model, or null before the first refresh.
  std::shared_ptr<const RecommendationModel> model() const;
  // The current model, loaded or trained first when absent or stale (as for_user does).
  Result<std::shared_ptr<const RecommendationModel>> fresh_model(Store& store, const Clock& clock);
  // Which model this process serves (hash, trained_at, trained here or loaded).
  std::optional<ServedModel> served() const { return models_.served(); }
  // Trainings this service ran.
  int trainings() const { return models_.trainings(); }

 private:
  StoredModelHolder<RecommendationModel>::Train trainer(Store& store) const;
  Result<std::shared_ptr<const RecommendationModel>> fresh(Store& store, UnixSeconds now);

  RecommendOptions options_;
  bool share_through_store_;
  std::string replica_id_;  // this process's training-lease holder id
  StoredModelHolder<RecommendationModel> models_;
};

}  // namespace fulcrum
