// Top-k ranking metrics for one user (Manning et al., "Introduction to Information
// Retrieval", ch. 8): precision@k = hits/k, recall@k = hits/|relevant|, and NDCG@k with
// binary gains, DCG = sum over hit ranks r (1-based) of 1/log2(r+1), divided by the DCG
// of an ideal ranking of min(k, |relevant|) hits.
#pragma once

#include <vector>

namespace fulcrum {

struct RankingScores {
  double precision = 0, recall = 0, ndcg = 0;
};

// `ranked` is the recommended item list (best first); `relevant` flags items by index.
RankingScores score_ranking(const std::vector<int>& ranked, const std::vector<bool>& relevant,
                            int k);

}  // namespace fulcrum
