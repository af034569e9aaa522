#include "automation/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <optional>
#include <vector>

namespace fulcrum::automation {

std::string hmac_sha256_hex(std::string_view secret, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

std::string signature_header(std::string_view secret, std::string_view key_id, UnixSeconds t,
                             std::string_view body, std::string_view previous_secret) {
  const std::string stamp = std::to_string(t);
  std::string message = stamp;
  message += '.';
  message += body;
  std::string header =
      "t=" + stamp + ",kid=" + std::string(key_id) + ",v1=" + hmac_sha256_hex(secret, message);
  if (!previous_secret.empty()) header += ",v1=" + hmac_sha256_hex(previous_secret, message);
  return header;
}

Status verify_signature(std::string_view header, std::string_view secret, std::string_view body,
                        UnixSeconds now, UnixSeconds tolerance_seconds) {
  std::optional<UnixSeconds> stamp;
  std::vector<std::string_view> signatures;
  std::size_t start = 0;
  while (start <= header.size()) {
    std::size_t end = header.find(',', start);
    if (end == std::string_view::npos) end = header.size();
    const std::string_view item = header.substr(start, end - start);
    const std::size_t eq = item.find('=');
    if (eq != std::string_view::npos) {
      const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
      if (key == "t") {
        UnixSeconds parsed = 0;
        auto [ptr, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
        if (error == std::errc() && ptr == value.data() + value.size()) stamp = parsed;
      } else if (key == "v1") {
        signatures.push_back(value);
      }
    }
    start = end + 1;
  }
  if (!stamp || signatures.empty()) {
    return invalid_argument("signature header needs t= and v1=", std::string(kSignatureHeader));
  }
  if (*stamp < now - tolerance_seconds || *stamp > now + tolerance_seconds) {
    return Status(StatusCode::kPermissionDenied, "signature timestamp outside the tolerance");
  }
  std::string message = std::to_string(*stamp);
  message += '.';
  message += body;
  const std::string expected = hmac_sha256_hex(secret, message);
  for (std::string_view candidate : signatures) {
    if (candidate.size() == expected.size() &&
        CRYPTO_memcmp(candidate.data(), expected.data(), expected.size()) == 0) {
      return Status::ok();
    }
  }
  return Status(StatusCode::kPermissionDenied, "signature does not match");
}

}  // namespace fulcrum::automation
