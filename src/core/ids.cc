#include "core/ids.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace fulcrum {

std::string to_hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string new_id(std::string_view prefix) {
  unsigned char random_bytes[8];
  if (RAND_bytes(random_bytes, sizeof random_bytes) != 1) {
    throw std::runtime_error("RAND_bytes failed");  // only when the OS has no entropy
  }
  return std::string(prefix) + "_" +
         to_hex(std::string_view(reinterpret_cast<const char*>(random_bytes), sizeof random_bytes));
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return to_hex(std::string_view(reinterpret_cast<const char*>(digest), length));
}

bool is_valid_external_id(std::string_view text) {
  if (text.empty() || text.size() > 128) return false;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace fulcrum
