// Bucket ranges, variation choice and namespaces, as in the GrowthBook SDKs
// (packages/sdk-js/src/util.ts: getBucketRanges, chooseVariation, inNamespace).
//
// Variation i owns the half-open range [start_i, start_i + coverage * weight_i) where
// start_i is the cumulative weight of the variations before it; a bucket outside every range
// is "not in the experiment". Invalid input is repaired the way the SDKs repair it (coverage
// clamped to [0, 1]; weights of the wrong length or summing outside [0.99, 1.01] replaced by
// equal weights) so that the server and the SDKs never disagree; strict validation of what
// users type happens earlier, in assign/assigner.h.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fulcrum::assign {

struct VariationRange {
  double start = 0;  // inclusive
  double end = 0;    // exclusive
  friend bool operator==(const VariationRange&, const VariationRange&) = default;
};

// n equal weights 1/n (empty for n <= 0).
std::vector<double> get_equal_weights(int num_variations);

// `weights` empty means "not given" (equal weights).
std::vector<VariationRange> get_bucket_ranges(int num_variations, double coverage,
                                              std::span<const double> weights = {});

// Index of the first range containing n, or -1.
int choose_variation(double n, std::span<const VariationRange> ranges);

// A namespace slice: experiments in the same namespace with disjoint [start, end) slices
// never share users. Membership uses hash("__" + id, user, version 1).
struct Namespace {
  std::string id;
  double start = 0;
  double end = 1;
};
bool in_namespace(std::string_view user_id, const Namespace& ns);

}  // namespace fulcrum::assign
