#include "recommend/evaluation.h"

namespace fulcrum {

nlohmann::json RecommendationEvaluation::to_json() const {
  auto scores = [](const RankingScores& s) {
    return nlohmann::json{{"precision", s.precision}, {"recall", s.recall}, {"ndcg", s.ndcg}};
  };
  return nlohmann::json{{"cutoff", format_iso8601(cutoff)},
                        {"until", format_iso8601(until)},
                        {"k", k},
                        {"users_evaluated", users_evaluated},
                        {"model", scores(model)},
                        {"most_popular", scores(most_popular)}};
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
  UsageSnapshot next = UsageSnapshot::build(history, now, options.window_seconds);
  evaluation.until = next.at;
  evaluation.cutoff = next.at - next.window;
  auto core = build_model_core(history, evaluation.cutoff, options);
  if (!core.is_ok()) return core.status();
  const auto& past = core->snapshot;
  const int n = static_cast<int>(history.features().size());
  std::vector<bool> relevant(n);
  for (int u = 0; u < history.user_count(); ++u) {
    if (history.user(u).signup_at >= evaluation.cutoff) continue;
    bool any = false;
    for (int f = 0; f < n; ++f) {
      relevant[f] = past.used(u, f) == 0 && next.recent(u, f) > 0;
      any = any || relevant[f];
    }
    if (!any) continue;
    const int user = u;
    RankingScores model = score_ranking(rank_unused_features(*core, user), relevant, k);
    RankingScores popular = score_ranking(rank_unused_by_popularity(*core, user), relevant, k);
    evaluation.model.precision += model.precision;
    evaluation.model.recall += model.recall;
    evaluation.model.ndcg += model.ndcg;
    evaluation.most_popular.precision += popular.precision;
    evaluation.most_popular.recall += popular.recall;
    evaluation.most_popular.ndcg += popular.ndcg;
    evaluation.users_evaluated += 1;
  }
  if (evaluation.users_evaluated == 0) {
    return failed_precondition("no user adopted a new feature in the evaluation window");
  }
  double users = static_cast<double>(evaluation.users_evaluated);
  for (RankingScores* s : {&evaluation.model, &evaluation.most_popular}) {
    s->precision /= users;
    s->recall /= users;
    s->ndcg /= users;
  }
  return evaluation;
}

}  // namespace fulcrum
