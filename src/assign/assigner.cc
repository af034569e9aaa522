#include "assign/assigner.h"

#include <cmath>
#include <set>

#include "assign/hash.h"

namespace fulcrum::assign {

Status validate_allocation(const Allocation& allocation) {
  if (allocation.groups.size() < 2) {
    return invalid_argument("an experiment needs at least two groups", "traffic_allocation");
  }
  if (allocation.weights.size() != allocation.groups.size()) {
    return invalid_argument("every group needs exactly one weight", "traffic_allocation");
  }
  std::set<std::string> seen;
  double total = 0;
  for (std::size_t i = 0; i < allocation.groups.size(); ++i) {
    const std::string& name = allocation.groups[i];
    const std::string field = "traffic_allocation." + name;
    if (name.empty()) return invalid_argument("group names must not be empty", field);
    if (!seen.insert(name).second) return invalid_argument("duplicate group name", field);
    const double w = allocation.weights[i];
    if (!std::isfinite(w) || w < 0 || w > 1) {
      return invalid_argument("weight must be between 0 and 1", field);
    }
    total += w;
  }
  if (std::fabs(total - 1.0) > kWeightSumTolerance) {
    return invalid_argument("weights must sum to 1 (they sum to " + std::to_string(total) + ")",
                            "traffic_allocation");
  }
  if (!std::isfinite(allocation.coverage) || allocation.coverage <= 0 || allocation.coverage > 1) {
    return invalid_argument("coverage must be in (0, 1]", "coverage");
  }
  return Status::ok();
}

Result<Assigner> Assigner::create(std::string seed, const Allocation& allocation,
                                  std::optional<Namespace> ns, int hash_version) {
  FULCRUM_RETURN_IF_ERROR(validate_allocation(allocation));
  if (hash_version != 1 && hash_version != 2) {
    return invalid_argument("hash version must be 1 or 2", "hash_version");
  }
  if (ns) {
    if (ns->id.empty()) return invalid_argument("namespace id must not be empty", "namespace.id");
    if (!(ns->start >= 0 && ns->start < ns->end && ns->end <= 1)) {
      return invalid_argument("namespace range must satisfy 0 <= start < end <= 1",
                              "namespace.range");
    }
  }
  Assigner a;
  a.seed_ = std::move(seed);
  a.hash_ = SeededHash(a.seed_, hash_version);
  a.ranges_ = get_bucket_ranges(static_cast<int>(allocation.groups.size()), allocation.coverage,
                                allocation.weights);
  a.namespace_ = std::move(ns);
  return a;
}

double Assigner::bucket(std::string_view user_id) const {
  return *hash_(user_id);  // create() admits only versions 1 and 2
}

int Assigner::assign(std::string_view user_id) const {
  if (user_id.empty()) return -1;
  if (namespace_ && !in_namespace(user_id, *namespace_)) return -1;
  return choose_variation(bucket(user_id), ranges_);
}

}  // namespace fulcrum::assign
