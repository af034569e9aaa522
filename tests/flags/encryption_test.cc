// Payload encryption against GrowthBook's published "decrypt" cases (cases.json 0.8.0,
// copied to decrypt_cases.json) and an encrypt/decrypt round trip.
#include "flags/encryption.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace fulcrum::flags {
namespace {

using json = nlohmann::json;

TEST(Encryption, PassesGrowthBookDecryptCases) {
  std::ifstream in(std::string(FULCRUM_SOURCE_DIR) + "/tests/flags/decrypt_cases.json");
  const json cases = json::parse(in);
  ASSERT_EQ(cases["specVersion"], "0.8.0");
  ASSERT_EQ(cases["decrypt"].size(), 10u);
  for (const json& c : cases["decrypt"]) {
    const std::string name = c[0];
    std::optional<std::string> plain =
        decrypt_payload(c[1].get<std::string>(), c[2].get<std::string>());
    if (c[3].is_null()) {
      EXPECT_FALSE(plain.has_value()) << name << ": got " << plain.value_or("");
    } else {
      ASSERT_TRUE(plain.has_value()) << name;
      EXPECT_EQ(*plain, c[3].get<std::string>()) << name;
    }
  }
}

TEST(Encryption, RoundTripsWithAFreshKeyAndRandomIv) {
  const std::string key = generate_encryption_key();
  ASSERT_EQ(base64_decode(key)->size(), 16u);
  const std::string text = R"({"feature":{"defaultValue":true,"rules":[{"force":"é"}]}})";
  auto first = encrypt_payload(text, key);
  auto second = encrypt_payload(text, key);
  ASSERT_TRUE(first.is_ok());
  ASSERT_TRUE(second.is_ok());
  EXPECT_NE(*first, *second);  // a new IV each time
  EXPECT_EQ(decrypt_payload(*first, key), text);
  EXPECT_EQ(decrypt_payload(*second, key), text);
  EXPECT_FALSE(decrypt_payload(*first, generate_encryption_key()).has_value());
}

TEST(Encryption, RejectsKeysThatAreNotSixteenBytesOfBase64) {
  auto bad = encrypt_payload("x", "not base64!");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().field(), "encryption_key");
  EXPECT_FALSE(encrypt_payload("x", base64_encode("short")).is_ok());
}

TEST(Encryption, Base64IsStrict) {
  EXPECT_EQ(base64_decode(base64_encode("any carnal pleas")), "any carnal pleas");
  EXPECT_EQ(base64_encode("ab"), "YWI=");
  EXPECT_EQ(base64_decode("YWI="), "ab");
  EXPECT_FALSE(base64_decode("YWI").has_value());    // not a multiple of 4
  EXPECT_FALSE(base64_decode("Y=WI").has_value());   // padding inside
  EXPECT_FALSE(base64_decode("YW*=").has_value());   // bad character
}

}  // namespace
}  // namespace fulcrum::flags
