// Runs an oracle script of the source tree with /usr/bin/python3 (numpy, scipy, statsmodels):
// `request` goes to its stdin as JSON, its stdout comes back parsed. null when the script
// fails or prints no JSON, so the caller's assertion names the oracle.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace fulcrum::testing_support {

inline nlohmann::json run_python_oracle(const std::string& script, const nlohmann::json& request) {
  const std::string base = ::testing::TempDir() + "fulcrum_oracle_" + std::to_string(::getpid());
  {
    std::ofstream out(base + ".json");
    out << request.dump();
  }
  const std::string command =
      std::string("/usr/bin/python3 ") + FULCRUM_SOURCE_DIR + "/" + script + " < " + base + ".json";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return nullptr;
  std::string output;
  char buffer[65536];
  std::size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, read);
  const int status = ::pclose(pipe);
  std::remove((base + ".json").c_str());
  if (status != 0) return nullptr;
  return nlohmann::json::parse(output, nullptr, false);
}

}  // namespace fulcrum::testing_support
