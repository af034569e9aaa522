// Traffic allocation and the compiled per-experiment assigner: the hot path of the server.
//
// An Allocation names the groups in order with their weights (the contract's
// `traffic_allocation`, {"control": 0.5, "variant": 0.5}) and the coverage (share of eligible
// users who enter the experiment at all). validate_allocation() is the strict check for what
// people send (at least two groups, unique non-empty names, weights in [0, 1] summing to 1
// within 1e-6, coverage in (0, 1]); errors name the field, e.g. "traffic_allocation.variant".
//
// Assigner precomputes everything that does not depend on the user (FNV state after the
// seed, bucket ranges), so assign() is two short FNV passes and a range scan, allocation free
// and thread-safe. Results equal the GrowthBook SDK's run() for an experiment with the same
// key/seed, hashVersion, weights, coverage and namespace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "assign/buckets.h"
#include "assign/hash.h"
#include "core/status.h"

namespace fulcrum::assign {

struct Allocation {
  std::vector<std::string> groups;  // in assignment order; index = variation id
  std::vector<double> weights;      // same length as groups
  double coverage = 1.0;
};

constexpr double kWeightSumTolerance = 1e-6;

Status validate_allocation(const Allocation& allocation);

class Assigner {
 public:
  // Validates the allocation (see above) and the hash version (1 or 2).
  static Result<Assigner> create(std::string seed, const Allocation& allocation,
                                 std::optional<Namespace> ns = std::nullopt, int hash_version = 2);

  // Variation index, or -1 when the user is outside the namespace slice or the coverage.
  // Empty user ids are never in the experiment (as in the SDKs).
  int assign(std::string_view user_id) const;
  // The user's bucket in [0, 1) (for diagnostics and tests).
  double bucket(std::string_view user_id) const;

  const std::string& seed() const { return seed_; }
  const std::vector<VariationRange>& ranges() const { return ranges_; }
  std::size_t num_variations() const { return ranges_.size(); }

 private:
  Assigner() = default;
  std::string seed_;
  SeededHash hash_;
  std::vector<VariationRange> ranges_;
  std::optional<Namespace> namespace_;
};

}  // namespace fulcrum::assign
