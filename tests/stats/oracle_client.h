// Test helper: runs tests/stats/oracle.py (scipy/statsmodels) on a batch of
// cases and compares numbers at 1e-9 relative tolerance.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace fulcrum::stats::testing {

inline constexpr double kRelativeTolerance = 1e-9;

// Returns one result per case, or a JSON null when the oracle could not run.
inline nlohmann::json run_oracle(const std::string &kind,
                                 const nlohmann::json &cases) {
  const std::string request_path = ::testing::TempDir() + "fulcrum_oracle_" +
                                   kind + "_" + std::to_string(::getpid()) +
                                   ".json";
  {
    std::ofstream request(request_path);
    request << nlohmann::json{{"kind", kind}, {"cases", cases}}.dump();
  }
  const std::string command = std::string("/usr/bin/python3 ") +
                              FULCRUM_SOURCE_DIR + "/tests/stats/oracle.py < " +
                              request_path;
  FILE *pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr)
    return nullptr;
  std::string output;
  char buffer[65536];
  size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0)
    output.append(buffer, read);
  const int exit_status = ::pclose(pipe);
  std::remove(request_path.c_str());
  if (exit_status != 0)
    return nullptr;
  auto parsed = nlohmann::json::parse(output, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array() ||
      parsed.size() != cases.size()) {
    return nullptr;
  }
  return parsed;
}

// |actual - expected| <= 1e-9 * max(|expected|, scale). `scale` lets quantities
// that are differences near 0 (interval bounds) be judged against their natural
// size (the width).
inline ::testing::AssertionResult close(double actual, double expected,
                                        double scale = 0) {
  const double tolerance =
      kRelativeTolerance * std::max(std::abs(expected), scale);
  if (std::abs(actual - expected) <= tolerance || actual == expected) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "actual " << actual << " vs expected " << expected
         << " (relative error "
         << std::abs(actual - expected) / std::max(std::abs(expected), 1e-300)
         << ")";
}

} // namespace fulcrum::stats::testing
