#include "recommend/ranking_metrics.h"

#include <algorithm>
#include <cmath>

namespace fulcrum {

RankingScores score_ranking(const std::vector<int>& ranked, const std::vector<bool>& relevant,
                            int k) {
  RankingScores scores;
  int relevant_count = static_cast<int>(std::count(relevant.begin(), relevant.end(), true));
  if (k <= 0 || relevant_count == 0) return scores;
  int hits = 0;
  double dcg = 0;
  int limit = std::min<int>(k, static_cast<int>(ranked.size()));
  for (int rank = 0; rank < limit; ++rank) {
    int item = ranked[rank];
    if (item >= 0 && item < static_cast<int>(relevant.size()) && relevant[item]) {
      ++hits;
      dcg += 1.0 / std::log2(rank + 2.0);
    }
  }
  double ideal = 0;
  for (int rank = 0; rank < std::min(k, relevant_count); ++rank)
    ideal += 1.0 / std::log2(rank + 2.0);
  scores.precision = static_cast<double>(hits) / k;
  scores.recall = static_cast<double>(hits) / relevant_count;
  scores.ndcg = dcg / ideal;
  return scores;
}

}  // namespace fulcrum
