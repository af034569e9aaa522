#include "sunset/trend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

namespace fulcrum {
namespace {

std::string python_list(const std::vector<double>& values) {
  std::ostringstream out;
  out.precision(17);
  out << "[";
  for (std::size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
  out << "]";
  return out.str();
}

// Runs a Python snippet once per series (bound to y) in one interpreter (scipy
// imports are slow) and returns the numbers it prints, all series concatenated.
std::vector<double> run_python(const std::string& body,
                               const std::vector<std::vector<double>>& all) {
  std::string script = "import numpy as np, scipy.stats as st, math\nfor y in [";
  for (const auto& y : all) script += python_list(y) + ",";
  script += "]:\n";
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) script += "  " + line + "\n";
  std::string command = "/usr/bin/python3 -c '" + script + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::vector<double> numbers;
  if (!pipe) return numbers;
  double value = 0;
  while (fscanf(pipe.get(), "%lf", &value) == 1) numbers.push_back(value);
  return numbers;
}

const std::vector<std::vector<double>> kSeries = {
    {120, 113, 110, 101, 97, 93, 85, 83, 76, 74, 69, 64},  // declining
    {10, 12, 12, 15, 14, 18, 21, 20, 25, 27, 26, 31},      // growing, one tie
    {50, 52, 49, 51, 50, 50, 53, 48, 50, 52, 49, 51},      // flat with many ties
    {5, 5, 5, 6, 5, 5, 7, 5, 5, 5, 8, 5},                  // heavy ties
    {3, 1, 4, 1, 5, 9, 2, 6},                              // short, noisy
};

TEST(TheilSen, MatchesScipyTheilslopes) {
  auto all = run_python(
      "r = st.theilslopes(y, np.arange(len(y)), 0.95)\n"
      "print(r[0], r[1], r[2], r[3])\n",
      kSeries);
  ASSERT_EQ(all.size(), 4 * kSeries.size());
  for (std::size_t k = 0; k < kSeries.size(); ++k) {
    const auto& y = kSeries[k];
    const double* expected = &all[4 * k];
    TheilSen fit = theil_sen(y, 0.95);
    EXPECT_NEAR(fit.slope, expected[0], 1e-12) << python_list(y);
    EXPECT_NEAR(fit.intercept, expected[1], 1e-9) << python_list(y);
    EXPECT_NEAR(fit.slope_low, expected[2], 1e-12) << python_list(y);
    EXPECT_NEAR(fit.slope_high, expected[3], 1e-12) << python_list(y);
  }
}

// A direct Mann-Kendall implementation (Hussain & Mahmud's pyMannKendall
// original_test formulae) plus scipy's kendalltau for tau-b.
TEST(MannKendall, MatchesDirectImplementationAndKendallTau) {
  const std::string script =
      "n = len(y)\n"
      "s = sum(np.sign(y[j] - y[i]) for i in range(n) for j in range(i + 1, "
      "n))\n"
      "_, counts = np.unique(y, return_counts=True)\n"
      "var = (n*(n-1)*(2*n+5) - sum(t*(t-1)*(2*t+5) for t in counts)) / 18.0\n"
      "z = (s - 1)/math.sqrt(var) if s > 0 else ((s + 1)/math.sqrt(var) if s < "
      "0 else 0.0)\n"
      "p = 2 * st.norm.sf(abs(z))\n"
      "tau = st.kendalltau(np.arange(n), y)[0]\n"
      "print(s, var, z, p, tau)\n";
  auto all = run_python(script, kSeries);
  ASSERT_EQ(all.size(), 5 * kSeries.size());
  for (std::size_t k = 0; k < kSeries.size(); ++k) {
    const auto& y = kSeries[k];
    const double* expected = &all[5 * k];
    MannKendall test = mann_kendall(y);
    EXPECT_DOUBLE_EQ(test.s, expected[0]) << python_list(y);
    EXPECT_NEAR(test.variance, expected[1], 1e-9);
    EXPECT_NEAR(test.z, expected[2], 1e-12);
    EXPECT_NEAR(test.p_value, expected[3], 1e-12 + 1e-9 * expected[3]);
    EXPECT_NEAR(test.tau, expected[4], 1e-12);
  }
}

TEST(MannKendall, ConstantAndTinySeriesCarryNoEvidence) {
  MannKendall flat = mann_kendall({4, 4, 4, 4, 4});
  EXPECT_EQ(flat.s, 0);
  EXPECT_EQ(flat.p_value, 1);
  EXPECT_EQ(mann_kendall({1}).p_value, 1);
  TheilSen single = theil_sen({7});
  EXPECT_EQ(single.slope, 0);
}

}  // namespace
}  // namespace fulcrum
