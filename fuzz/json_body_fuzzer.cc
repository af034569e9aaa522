// The JSON bodies of every route that takes one: the first byte picks the route, the rest is
// the body, sent to the route's handler (as an admin) over a real SQLite store holding one
// running A/B test. Every answer must pass FuzzApi::check.
#include <array>
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_api.h"

namespace {

struct Target {
  const char* method;
  const char* path;  // {test} is replaced by the seeded test's id
};

constexpr std::array<Target, 9> kTargets = {{
    {"POST", "/ab-tests"},
    {"POST", "/ab-tests/{test}/assign"},
    {"POST", "/ab-tests/{test}/complete"},
    {"POST", "/ab-tests/{test}/pause"},
    {"POST", "/events"},
    {"POST", "/events/ndjson"},
    {"POST", "/events/csv"},
    {"POST", "/auth/user-token"},
    {"POST", "/retention-campaigns/trigger"},
}};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fulcrum::fuzz::FuzzApi api;
  api.next_input();
  if (size == 0) return 0;
  const Target& target = kTargets[data[0] % kTargets.size()];
  fulcrum::api::Request request;
  request.method = target.method;
  std::string path = std::string(fulcrum::api::kApiPrefix) + target.path;
  if (auto at = path.find("{test}"); at != std::string::npos) path.replace(at, 6, api.test_id());
  request.path = std::move(path);
  request.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  if (!api.call(std::move(request))) {
    std::fprintf(stderr, "fuzz: no route for %s %s\n", target.method, target.path);
    std::abort();
  }
  return 0;
}
