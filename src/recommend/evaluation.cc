#include "recommend/evaluation.h"

namespace fulcrum {
namespace {

void add_scores(RankingScores& total, const RankingScores& one) {
  total.precision += one.precision;
  total.recall += one.recall;
  total.ndcg += one.ndcg;
}

}  // namespace

nlohmann::json RecommendationEvaluation::to_json() const {
  auto scores = [](const RankingScores& s) {
    return nlohmann::json{{"precision", s.precision}, {"recall", s.recall}, {"ndcg", s.ndcg}};
  };
  return nlohmann::json{{"cutoff", format_iso8601(cutoff)},
                        {"until", format_iso8601(until)},
                        {"k", k},
                        {"users_evaluated", users_evaluated},
                        {"model", scores(model)},
                        {"most_popular", scores(most_popular)},
                        {"ease_lambda", lambda.to_json()},
                        {"fixed_lambda_model", [&] {
                           auto fixed = scores(fixed_lambda_model);
                           fixed["lambda"] = kFixedEaseLambda;
                           return fixed;
                         }()}};
}

Result<RecommendationEvaluation> evaluate_recommendations(const UsageHistory& history,
                                                          UnixSeconds now,
                                                          const RecommendOptions& options, int k) {
  if (k < 1) return invalid_argument("k must be >= 1", "k");
  if (!(options.window_seconds > 0)) {
    return invalid_argument("window_seconds must be positive", "window_seconds");
  }
  if (history.features().empty()) return failed_precondition("no features to evaluate");
  RecommendationEvaluation evaluation;
  evaluation.k = k;
  // Whole days (usage/usage_history.h): the split is at midnights.
  evaluation.until = analysis_end(now);
  const UnixSeconds window =
      (options.window_seconds + kSecondsPerDay - 1) / kSecondsPerDay * kSecondsPerDay;
  evaluation.cutoff = evaluation.until - window;
  {
    // Lambda from the window before the cutoff: the test window stays unseen.
    UsageSnapshot train =
        UsageSnapshot::build(history, evaluation.cutoff - window, options.window_seconds);
    auto lambda = choose_ease_lambda(history, train, evaluation.cutoff, options);
    if (!lambda.is_ok()) return lambda.status();
    evaluation.lambda = std::move(lambda).value();
  }
  auto core = build_model_core(history, evaluation.cutoff, options, evaluation.lambda.chosen);
  if (!core.is_ok()) return core.status();
  const auto& past = core->snapshot;
  auto fixed_weights = fit_ease_from_usage(past.used, kFixedEaseLambda);
  if (!fixed_weights.is_ok()) return fixed_weights.status();
  std::vector<bool> relevant;
  for (int u = 0; u < history.user_count(); ++u) {
    if (history.user(u).signup_at >= evaluation.cutoff) continue;
    // The targets: features first used in [cutoff, until).
    if (!new_adoptions(history, past, u, evaluation.until, relevant)) continue;
    const int user = u;
    RankingScores model = score_ranking(rank_unused_features(*core, user), relevant, k);
    RankingScores popular = score_ranking(rank_unused_by_popularity(*core, user), relevant, k);
    RankingScores fixed = score_ranking(
        rank_unused_features(*fixed_weights, core->popularity, past.used.row(user).data()),
        relevant, k);
    add_scores(evaluation.model, model);
    add_scores(evaluation.most_popular, popular);
    add_scores(evaluation.fixed_lambda_model, fixed);
    evaluation.users_evaluated += 1;
  }
  if (evaluation.users_evaluated == 0) {
    return failed_precondition("no user adopted a new feature in the evaluation window");
  }
  double users = static_cast<double>(evaluation.users_evaluated);
  for (RankingScores* s :
       {&evaluation.model, &evaluation.most_popular, &evaluation.fixed_lambda_model}) {
    s->precision /= users;
    s->recall /= users;
    s->ndcg /= users;
  }
  return evaluation;
}

}  // namespace fulcrum
