#include "core/ids.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
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
  // Every authenticated request hashes its key: EVP_Digest with EVP_sha256() fetches the
  // algorithm from the provider and allocates a context on each call (~7k instructions of
  // an OFREP request's ~100k). Fetch once per process, keep one context per thread.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ContextDeleter {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
  };
  thread_local std::unique_ptr<EVP_MD_CTX, ContextDeleter> context(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (sha256 == nullptr || !context || EVP_DigestInit_ex2(context.get(), sha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest, &length) != 1) {
    throw std::runtime_error("SHA-256 is not available");  // only with a broken OpenSSL
  }
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
