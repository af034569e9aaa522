#include <gtest/gtest.h>

#include "core/ids.h"
#include "core/money.h"
#include "core/status.h"

namespace fulcrum {
namespace {

TEST(MoneyTest, ParsesAndFormatsMinorUnitsExactly) {
  EXPECT_EQ(parse_money("12.34")->minor_units, 1234);
  EXPECT_EQ(parse_money("12.3")->minor_units, 1230);
  EXPECT_EQ(parse_money("12")->minor_units, 1200);
  EXPECT_EQ(parse_money("-0.05")->minor_units, -5);
  EXPECT_EQ(Money::from_minor(-5).to_string(), "-0.05");
  EXPECT_EQ(Money::from_minor(123456).to_string(), "1234.56");
  EXPECT_EQ(Money::from_major(0.1 + 0.2).minor_units, 30);
  for (const char* bad : {"", "-", "1.234", "1.", "abc", "1,00", "1.2x"}) {
    EXPECT_FALSE(parse_money(bad).has_value()) << bad;
  }
}

TEST(IdsTest, NewIdsAreUniqueAndWellFormed) {
  const std::string a = new_id("test"), b = new_id("test");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 5u + 16u);
  EXPECT_TRUE(is_valid_external_id(a));
  EXPECT_FALSE(is_valid_external_id(""));
  EXPECT_FALSE(is_valid_external_id("a b"));
  EXPECT_FALSE(is_valid_external_id(std::string(129, 'a')));
}

TEST(IdsTest, Sha256MatchesPublishedVector) {
  // FIPS 180-2 example "abc".
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(StatusTest, ResultCarriesValueOrError) {
  Result<int> good = 3;
  EXPECT_TRUE(good.is_ok());
  EXPECT_EQ(*good, 3);
  Result<int> bad = invalid_argument("must be positive", "weights.control");
  EXPECT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().field(), "weights.control");
  EXPECT_EQ(bad.status().to_string(), "invalid_argument (weights.control): must be positive");
}

}  // namespace
}  // namespace fulcrum
