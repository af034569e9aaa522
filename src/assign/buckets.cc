#include "assign/buckets.h"

#include <string>

#include "assign/hash.h"

namespace fulcrum::assign {

std::vector<double> get_equal_weights(int num_variations) {
  if (num_variations <= 0) return {};
  return std::vector<double>(static_cast<std::size_t>(num_variations), 1.0 / num_variations);
}

std::vector<VariationRange> get_bucket_ranges(int num_variations, double coverage,
                                              std::span<const double> weights) {
  if (coverage < 0) coverage = 0;
  if (coverage > 1) coverage = 1;
  std::vector<double> chosen(weights.begin(), weights.end());
  if (chosen.size() != static_cast<std::size_t>(num_variations < 0 ? 0 : num_variations)) {
    chosen = get_equal_weights(num_variations);
  }
  double total = 0;
  for (double w : chosen) total += w;
  // Same tolerance as the SDKs: anything outside [0.99, 1.01] falls back to equal weights.
  if (total < 0.99 || total > 1.01) chosen = get_equal_weights(num_variations);

  std::vector<VariationRange> ranges;
  ranges.reserve(chosen.size());
  double cumulative = 0;
  for (double w : chosen) {
    const double start = cumulative;
    cumulative += w;
    ranges.push_back({start, start + coverage * w});
  }
  return ranges;
}

int choose_variation(double n, std::span<const VariationRange> ranges) {
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (n >= ranges[i].start && n < ranges[i].end) return static_cast<int>(i);
  }
  return -1;
}

bool in_namespace(std::string_view user_id, const Namespace& ns) {
  // hash("__" + id, user, 1) = fnv1a32(user + "__" + id) % 1000 / 1000, streamed so the
  // hot path does not allocate.
  const std::uint32_t h = fnv1a32_append(fnv1a32_append(fnv1a32(user_id), "__"), ns.id);
  const double n = static_cast<double>(h % 1000u) / 1000.0;
  return n >= ns.start && n < ns.end;
}

}  // namespace fulcrum::assign
