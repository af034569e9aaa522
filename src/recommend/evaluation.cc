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
  // One walk over the history's slices: the snapshot lambda is validated on (one window
  // before the cutoff) and its targets, the snapshot at the cutoff and the test targets.
  UsageSnapshot train =
      UsageSnapshot::empty(history, evaluation.cutoff - window, options.window_seconds);
  UsageSnapshot past = UsageSnapshot::empty(history, evaluation.cutoff, options.window_seconds);
  AdoptionTargets lambda_targets, test_targets;
  std::vector<bool> adopted;
  FULCRUM_RETURN_IF_ERROR(history.for_each_slice([&](std::span<const int> users) {
    for (int u : users) {
      train.fill(history, u);
      past.fill(history, u);
      const UnixSeconds signup_at = history.signup_at(u);
      if (signup_at < train.at && new_adoptions(history, train, u, evaluation.cutoff, adopted)) {
        lambda_targets.add(u, adopted);
      }
      // The targets: features first used in [cutoff, until).
      if (signup_at < evaluation.cutoff &&
          new_adoptions(history, past, u, evaluation.until, adopted)) {
        test_targets.add(u, adopted);
      }
    }
    return Status::ok();
  }));
  lambda_targets.sort_by_user();
  test_targets.sort_by_user();
  {
    // Lambda from the window before the cutoff: the test window stays unseen.
    auto lambda = choose_ease_lambda(train, evaluation.cutoff, lambda_targets, options);
    if (!lambda.is_ok()) return lambda.status();
    evaluation.lambda = std::move(lambda).value();
    train = {};
    lambda_targets = {};
  }
  auto core = build_model_core(std::move(past), evaluation.lambda.chosen);
  if (!core.is_ok()) return core.status();
  const auto& snapshot = core->snapshot;
  auto fixed_weights = fit_ease_from_usage(snapshot.used, kFixedEaseLambda);
  if (!fixed_weights.is_ok()) return fixed_weights.status();
  for (std::size_t i = 0; i < test_targets.users.size(); ++i) {
    const int user = test_targets.users[i];
    const std::vector<bool>& relevant = test_targets.relevant[i];
    RankingScores model = score_ranking(rank_unused_features(*core, user), relevant, k);
    RankingScores popular = score_ranking(rank_unused_by_popularity(*core, user), relevant, k);
    RankingScores fixed = score_ranking(
        rank_unused_features(*fixed_weights, core->popularity, snapshot.used.row(user).data()),
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
