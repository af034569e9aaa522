// GrowthBook-compatible hashing (packages/sdk-js/src/util.ts, spec version 0.5.x), so that
// the open GrowthBook SDKs and this server put every user in the same bucket.
//
// fnv1a32 is 32-bit FNV-1a (offset basis 0x811c9dc5, prime 0x01000193) over the UTF-16 code
// units of the text, exactly as the JavaScript SDK's `charCodeAt` loop does; for ASCII that
// is the plain byte-wise FNV-1a. hash() returns a bucket in [0, 1):
//   version 1: (fnv1a32(value + seed) % 1000) / 1000        (original, slightly biased)
//   version 2: (fnv1a32(decimal(fnv1a32(seed + value))) % 10000) / 10000   (unbiased)
// and nullopt for any other version.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fulcrum::assign {

constexpr std::uint32_t kFnvOffsetBasis = 0x811c9dc5u;
constexpr std::uint32_t kFnvPrime = 0x01000193u;

// Continues an FNV-1a state over more UTF-8 text (streaming: fnv1a32(a + b) ==
// fnv1a32_append(fnv1a32(a), b) when a ends on a character boundary).
std::uint32_t fnv1a32_append(std::uint32_t state, std::string_view utf8);
inline std::uint32_t fnv1a32(std::string_view utf8) {
  return fnv1a32_append(kFnvOffsetBasis, utf8);
}

// Version-2 second round: FNV-1a of the decimal text of a 32-bit value, then % 10000.
double hash_v2_finish(std::uint32_t first_round);

std::optional<double> hash(std::string_view seed, std::string_view value, int version);

// hash(seed, value, version) with the seed compiled once: version 2 keeps the FNV state after
// the seed, so each call hashes only the value. The one hashing path of Assigner and the
// evaluator's experiment rules, rollouts and filters. Versions other than 1 and 2 return
// nullopt, as hash() does.
class SeededHash {
 public:
  SeededHash() = default;
  SeededHash(std::string_view seed, int version);
  std::optional<double> operator()(std::string_view value) const;
  int version() const { return version_; }

 private:
  std::string seed_;
  std::uint32_t seed_state_ = kFnvOffsetBasis;
  int version_ = 2;
};

}  // namespace fulcrum::assign
