// Semantic-version comparison ($veq ... $vlte): the versionCompare cases of GrowthBook's
// earlier suites (cases.json 0.5.x), kept because 0.8.0 only covers versions through
// evalCondition.
#include "assign/version.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace fulcrum::assign {
namespace {

using json = nlohmann::json;

const json& cases() {
  static const json data = json::parse(
      R"json({"lt": [["0.9.99", "1.0.0", true], ["0.9.0", "0.10.0", true], ["1.0.0-0.0", "1.0.0-0.0.0", true], ["1.0.0-9999", "1.0.0--", true], ["1.0.0-99", "1.0.0-100", true], ["1.0.0-alpha", "1.0.0-alpha.1", true], ["1.0.0-alpha.1", "1.0.0-alpha.beta", true], ["1.0.0-alpha.beta", "1.0.0-beta", true], ["1.0.0-beta", "1.0.0-beta.2", true], ["1.0.0-beta.2", "1.0.0-beta.11", true], ["1.0.0-beta.11", "1.0.0-rc.1", true], ["1.0.0-rc.1", "1.0.0", true], ["1.0.0-0", "1.0.0--1", true], ["1.0.0-0", "1.0.0-1", true], ["1.0.0-1.0", "1.0.0-1.-1", true]], "gt": [["0.0.0", "0.0.0-foo", true], ["0.0.1", "0.0.0", true], ["1.0.0", "0.9.9", true], ["0.10.0", "0.9.0", true], ["0.99.0", "0.10.0", true], ["2.0.0", "1.2.3", true], ["v0.0.0", "0.0.0-foo", true], ["v0.0.1", "0.0.0", true], ["v1.0.0", "0.9.9", true], ["v0.10.0", "0.9.0", true], ["v0.99.0", "0.10.0", true], ["v2.0.0", "1.2.3", true], ["0.0.0", "v0.0.0-foo", true], ["0.0.1", "v0.0.0", true], ["1.0.0", "v0.9.9", true], ["0.10.0", "v0.9.0", true], ["0.99.0", "v0.10.0", true], ["2.0.0", "v1.2.3", true], ["1.2.3", "1.2.3-asdf", true], ["1.2.3", "1.2.3-4", true], ["1.2.3", "1.2.3-4-foo", true], ["1.2.3-5-foo", "1.2.3-5", true], ["1.2.3-5", "1.2.3-4", true], ["1.2.3-5-foo", "1.2.3-5-Foo", true], ["3.0.0", "2.7.2+asdf", true], ["1.2.3-a.10", "1.2.3-a.5", true], ["1.2.3-a.b", "1.2.3-a.5", true], ["1.2.3-a.b", "1.2.3-a", true], ["1.2.3-a.b.c", "1.2.3-a.b.c.d", false], ["1.2.3-a.b.c.10.d.5", "1.2.3-a.b.c.5.d.100", true], ["1.2.3-r2", "1.2.3-r100", true], ["1.2.3-r100", "1.2.3-R2", true], ["a.b.c.d.e.f", "1.2.3", true], ["10.0.0", "9.0.0", true], ["10000.0.0", "9999.0.0", true]], "eq": [["1.2.3", "1.2.3", true], ["1.2.3", "v1.2.3", true], ["1.2.3-0", "v1.2.3-0", true], ["1.2.3-1", "1.2.3-1", true], ["1.2.3-1", "v1.2.3-1", true], ["1.2.3-beta", "1.2.3-beta", true], ["1.2.3-beta", "v1.2.3-beta", true], ["1.2.3-beta+build", "1.2.3-beta+otherbuild", true], ["1.2.3-beta+build", "v1.2.3-beta+otherbuild", true], ["1-2-3", "1.2.3", true], ["1-2-3", "1-2.3+build99", true], ["1-2-3", "v1.2.3", true], ["1.2.3.4", "1.2.3-4", true]]})json");
  return data;
}

TEST(Version, GrowthBookVersionCompareCases) {
  ASSERT_GE(cases().at("lt").size(), 5u);
  for (const auto& c : cases().at("lt")) {
    EXPECT_EQ(compare_versions(c[0].get<std::string>(), c[1].get<std::string>()) < 0,
              c[2].get<bool>())
        << c.dump();
  }
  for (const auto& c : cases().at("gt")) {
    EXPECT_EQ(compare_versions(c[0].get<std::string>(), c[1].get<std::string>()) > 0,
              c[2].get<bool>())
        << c.dump();
  }
  for (const auto& c : cases().at("eq")) {
    EXPECT_EQ(compare_versions(c[0].get<std::string>(), c[1].get<std::string>()) == 0,
              c[2].get<bool>())
        << c.dump();
  }
}

// The allocation-free form the evaluator uses equals padded_version_string.
TEST(Version, PaddedIntoMatchesPaddedString) {
  for (const char* section : {"lt", "gt", "eq"}) {
    for (const auto& c : cases().at(section)) {
      for (int side = 0; side < 2; ++side) {
        const std::string v = c[side].get<std::string>();
        char buf[128];
        const std::size_t n = padded_version_into(v, buf, sizeof buf);
        ASSERT_NE(n, std::string_view::npos) << v;
        EXPECT_EQ(std::string(buf, n), padded_version_string(v)) << v;
        EXPECT_EQ(compare_with_padded(v, padded_version_string("1.2.3")) < 0,
                  compare_versions(v, "1.2.3") < 0)
            << v;
      }
    }
  }
  for (const char* v : {"", "v", "1", "1.2", "v1.2.3+build.7", "1.0.0-rc.1", "10.20.30.40-x"}) {
    char buf[128];
    EXPECT_EQ(std::string(buf, padded_version_into(v, buf, sizeof buf)), padded_version_string(v))
        << v;
  }
  char tiny[4];
  EXPECT_EQ(padded_version_into("1.2.3", tiny, sizeof tiny), std::string_view::npos);
  EXPECT_EQ(compare_with_padded(std::string(300, '9'), padded_version_string("1.0.0")) > 0, true);
}

}  // namespace
}  // namespace fulcrum::assign
