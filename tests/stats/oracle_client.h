// Test helper: every test file registers its random cases per kind at static
// initialisation; the first test that asks for a kind's expected values runs
// tests/stats/oracle.py (scipy/statsmodels) for that kind only. ctest runs every test in its
// own process, so computing only the asked kind keeps each oracle test at the cost of one
// Python start plus its own cases (a few seconds on a loaded CI machine) instead of every
// kind's (10-15 s). Also the 1e-9 relative comparison used by the oracle tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace fulcrum::stats::testing {

inline constexpr double kRelativeTolerance = 1e-9;

struct OracleBatch {
  nlohmann::json cases = nlohmann::json::array();
  nlohmann::json expected;  // one result per case; null when the oracle failed
};

inline std::map<std::string, OracleBatch>& oracle_registry() {
  static std::map<std::string, OracleBatch> registry;
  return registry;
}

// Registers the cases of one kind (see KINDS in oracle.py). Returns true for
// use as a static initialiser.
inline bool register_oracle_cases(const std::string& kind, nlohmann::json cases) {
  oracle_registry()[kind].cases = std::move(cases);
  return true;
}

inline void run_oracle_for(const std::string& kind) {
  static std::map<std::string, bool> ran;
  if (ran[kind]) return;
  ran[kind] = true;
  OracleBatch& batch = oracle_registry()[kind];
  nlohmann::json batches = nlohmann::json::object();
  batches[kind] = batch.cases;
  const std::string request_path =
      ::testing::TempDir() + "fulcrum_oracle_" + std::to_string(::getpid()) + "_" + kind + ".json";
  {
    std::ofstream request(request_path);
    request << nlohmann::json{{"batches", batches}}.dump();
  }
  const std::string command = std::string("/usr/bin/python3 ") + FULCRUM_SOURCE_DIR +
                              "/tests/stats/oracle.py < " + request_path;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return;
  std::string output;
  char buffer[65536];
  size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, read);
  const int exit_status = ::pclose(pipe);
  if (!std::getenv("FULCRUM_KEEP_ORACLE_REQUEST")) std::remove(request_path.c_str());
  if (exit_status != 0) return;
  auto parsed = nlohmann::json::parse(output, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return;
  if (parsed.contains(kind) && parsed[kind].size() == batch.cases.size()) {
    batch.expected = parsed[kind];
  }
}

// The registered cases of `kind` with the oracle's expected values (null on
// failure).
inline const OracleBatch& oracle_batch(const std::string& kind) {
  run_oracle_for(kind);
  return oracle_registry()[kind];
}

// |actual - expected| <= 1e-9 * max(|expected|, scale). `scale` lets quantities
// that are differences near 0 (interval bounds) be judged against their natural
// size (the width).
inline ::testing::AssertionResult close(double actual, double expected, double scale = 0) {
  const double tolerance = kRelativeTolerance * std::max(std::abs(expected), scale);
  if (std::abs(actual - expected) <= tolerance || actual == expected) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "actual " << actual << " vs expected " << expected << " (relative error "
         << std::abs(actual - expected) / std::max(std::abs(expected), 1e-300) << ")";
}

inline std::int64_t log_uniform_n(std::mt19937_64& rng, double low, double high) {
  std::uniform_real_distribution<double> u(std::log(low), std::log(high));
  return static_cast<std::int64_t>(std::exp(u(rng)));
}

}  // namespace fulcrum::stats::testing
