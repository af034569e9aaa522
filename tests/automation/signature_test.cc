// Webhook signatures: HMAC-SHA256 against RFC 4231's published test vector, and the
// header's verification (tampered body, wrong secret, stale timestamp, malformed header).
#include "automation/signature.h"

#include <gtest/gtest.h>

namespace fulcrum::automation {
namespace {

TEST(SignatureTest, HmacMatchesRfc4231TestCase2) {
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SignatureTest, HeaderVerifies) {
  const std::string body = R"({"type":"health.alert"})";
  const std::string header = signature_header("s3cret", "key_1", 1'700'000'000, body);
  EXPECT_EQ(header.rfind("t=1700000000,kid=key_1,v1=", 0), 0u) << header;
  EXPECT_EQ(header.substr(header.find("v1=") + 3),
            hmac_sha256_hex("s3cret", "1700000000." + body));
  EXPECT_TRUE(verify_signature(header, "s3cret", body, 1'700'000'100).is_ok());
  EXPECT_EQ(verify_signature(header, "s3cret", body + " ", 1'700'000'100).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(verify_signature(header, "other", body, 1'700'000'100).code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(verify_signature(header, "s3cret", body, 1'700'000'301).code(),
            StatusCode::kPermissionDenied);  // replayed after the tolerance
  EXPECT_EQ(verify_signature("v1=abc", "s3cret", body, 1'700'000'000).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fulcrum::automation
