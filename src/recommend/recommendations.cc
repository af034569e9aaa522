#include "recommend/recommendations.h"

namespace fulcrum {

Result<std::vector<FeatureRecommendation>> generate_feature_recommendations(
    Store& store, const Clock& clock, const std::string& user_id, const RecommendOptions& options) {
  auto user = store.get_user(user_id);
  if (!user.is_ok()) return user.status();
  if (!user->has_value()) return not_found("unknown user: " + user_id);
  const UnixSeconds now = clock.now();
  auto history = load_activity(store, now);
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

Status RecommendationService::refresh(Store& store, UnixSeconds now) {
  std::lock_guard<std::mutex> training(refresh_mutex_);
  return train_locked(store, now);
}

Status RecommendationService::train_locked(Store& store, UnixSeconds now) {
  auto history = load_activity(store, now);
  if (!history.is_ok()) return history.status();
  auto model = RecommendationModel::train(*history, now, options_);
  if (!model.is_ok()) return model.status();
  auto shared = std::make_shared<const RecommendationModel>(std::move(model).value());
  std::lock_guard<std::mutex> lock(mutex_);
  model_ = std::move(shared);
  return Status::ok();
}

std::shared_ptr<const RecommendationModel> RecommendationService::model() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return model_;
}

Result<std::vector<FeatureRecommendation>> RecommendationService::for_user(
    Store& store, const Clock& clock, const std::string& user_id) {
  auto current = model();
  const UnixSeconds now = clock.now();
  auto stale = [&] { return !current || now - current->trained_at() > max_model_age_; };
  if (stale()) {
    std::lock_guard<std::mutex> training(refresh_mutex_);
    current = model();  // another caller may have retrained while we waited
    if (stale()) {
      FULCRUM_RETURN_IF_ERROR(train_locked(store, now));
      current = model();
    }
  }
  auto result = current->recommend(user_id);
  if (result.is_ok() || result.status().code() != StatusCode::kNotFound) return result;
  auto user = store.get_user(user_id);
  if (!user.is_ok()) return user.status();
  if (!user->has_value()) return not_found("unknown user: " + user_id);
  return current->recommend_cold_start(**user);
}

}  // namespace fulcrum
