#include "recommend/recommendations.h"

#include "core/ids.h"
#include "store/model_document_store.h"

namespace fulcrum {

Result<std::vector<FeatureRecommendation>> generate_feature_recommendations(
    Store& store, const Clock& clock, const std::string& user_id, const RecommendOptions& options) {
  auto user = store.get_user(user_id);
  if (!user.is_ok()) return user.status();
  if (!user->has_value()) return not_found("unknown user: " + user_id);
  const UnixSeconds now = clock.now();
  auto history = UsageHistory::open(store, UsageLoadOptions{.to_day = analysis_end_day(now)});
  if (!history.is_ok()) return history.status();
  auto model = RecommendationModel::train(*history, now, options);
  if (!model.is_ok()) return model.status();
  auto result = model->recommend(user_id);
  if (result.is_ok()) return result;
  return model->recommend_cold_start(**user);
}

nlohmann::json recommendations_to_json(const std::vector<FeatureRecommendation>& recommendations) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& r : recommendations) array.push_back(r.to_json());
  return array;
}

ModelCodec<RecommendationModel> recommendation_model_codec(const RecommendOptions& options) {
  return {"recommendations", kRecommendationModelFormat, recommend_options_fingerprint(options),
          [](const RecommendationModel& model) { return model.serialize(); },
          [](std::string_view payload) { return RecommendationModel::deserialize(payload); }};
}

RecommendationService::RecommendationService(RecommendOptions options,
                                             StoredModelHolderOptions holder_options,
                                             bool share_through_store)
    : options_(std::move(options)),
      share_through_store_(share_through_store),
      replica_id_(new_id("replica")),
      models_(recommendation_model_codec(options_), std::move(holder_options)) {}

StoredModelHolder<RecommendationModel>::Train RecommendationService::trainer(Store& store) const {
  return [&store, options = options_](UnixSeconds now) -> Result<RecommendationModel> {
    auto history = UsageHistory::open(store, UsageLoadOptions{.to_day = analysis_end_day(now)});
    if (!history.is_ok()) return history.status();
    return RecommendationModel::train(*history, now, options);
  };
}

Status RecommendationService::refresh(Store& store, UnixSeconds now) {
  DocumentModelStore shared(store, replica_id_);
  return models_.refresh(now, trainer(store), share_through_store_ ? &shared : nullptr);
}

std::shared_ptr<const RecommendationModel> RecommendationService::model() const {
  return models_.model();
}

Result<std::shared_ptr<const RecommendationModel>> RecommendationService::fresh(Store& store,
                                                                                UnixSeconds now) {
  DocumentModelStore shared(store, replica_id_);
  return models_.fresh(now, trainer(store), share_through_store_ ? &shared : nullptr);
}

Result<std::shared_ptr<const RecommendationModel>> RecommendationService::fresh_model(
    Store& store, const Clock& clock) {
  return fresh(store, clock.now());
}

Result<std::vector<FeatureRecommendation>> RecommendationService::for_user(
    Store& store, const Clock& clock, const std::string& user_id) {
  auto model = fresh(store, clock.now());
  if (!model.is_ok()) return model.status();
  const auto& current = *model;
  auto result = current->recommend(user_id);
  if (result.is_ok() || result.status().code() != StatusCode::kNotFound) return result;
  auto user = store.get_user(user_id);
  if (!user.is_ok()) return user.status();
  if (!user->has_value()) return not_found("unknown user: " + user_id);
  return current->recommend_cold_start(**user);
}

}  // namespace fulcrum
