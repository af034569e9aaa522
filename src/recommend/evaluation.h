// Time-split offline evaluation of the recommender: the model is trained on events before
// `now - window`, ranks each user's unused features, and is scored against the features
// the user first used in the following window (precision@k, recall@k, NDCG@k averaged over
// users with at least one new feature), next to a most-popular ranker and the same model
// with the formerly fixed lambda (kFixedEaseLambda) on the same split. EASE's lambda is
// chosen without looking at the test window: validated on the window before the cutoff
// (trained before cutoff - window, scored on the adoptions of [cutoff - window, cutoff)).
#pragma once

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "recommend/ranking_metrics.h"
#include "recommend/recommendation_model.h"

namespace fulcrum {

struct RecommendationEvaluation {
  UnixSeconds cutoff = 0, until = 0;
  int k = 5;
  std::size_t users_evaluated = 0;
  RankingScores model, most_popular;
  EaseLambdaValidation lambda;       // how the model's lambda was chosen
  RankingScores fixed_lambda_model;  // the same model with lambda = kFixedEaseLambda

  nlohmann::json to_json() const;
};

Result<RecommendationEvaluation> evaluate_recommendations(const UsageHistory& history,
                                                          UnixSeconds now,
                                                          const RecommendOptions& options = {},
                                                          int k = 5);

}  // namespace fulcrum
