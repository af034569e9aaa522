#include "flags/encryption.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

namespace fulcrum::flags {
namespace {

constexpr std::size_t kIvBytes = 16;

const EVP_CIPHER* cipher_for(std::size_t key_bytes) {
  switch (key_bytes) {
    case 16:
      return EVP_aes_128_cbc();
    case 24:
      return EVP_aes_192_cbc();
    case 32:
      return EVP_aes_256_cbc();
  }
  return nullptr;
}

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

std::string random_bytes(std::size_t count) {
  std::string out(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(count)) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed");
  }
  return out;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int padding = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++padding;
        continue;
      }
      if (padding > 0) return std::nullopt;  // data after '='
      v[j] = value(c);
      if (v[j] < 0) return std::nullopt;
    }
    const unsigned bits = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((bits >> 16) & 0xff);
    if (padding < 2) out += static_cast<char>((bits >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(bits & 0xff);
  }
  return out;
}

std::string generate_encryption_key() { return base64_encode(random_bytes(16)); }

Result<std::string> encrypt_payload(std::string_view plaintext, std::string_view key_base64) {
  std::optional<std::string> key = base64_decode(key_base64);
  const EVP_CIPHER* cipher = key ? cipher_for(key->size()) : nullptr;
  if (!cipher) {
    return invalid_argument("must be base64 of 16 bytes (AES-128)", "encryption_key");
  }
  const std::string iv = random_bytes(kIvBytes);
  CipherContext context(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string out(plaintext.size() + kIvBytes, '\0');
  int written = 0, final_written = 0;
  if (!context ||
      EVP_EncryptInit_ex(context.get(), cipher, nullptr,
                         reinterpret_cast<const unsigned char*>(key->data()),
                         reinterpret_cast<const unsigned char*>(iv.data())) != 1 ||
      EVP_EncryptUpdate(context.get(), reinterpret_cast<unsigned char*>(out.data()), &written,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(context.get(), reinterpret_cast<unsigned char*>(out.data()) + written,
                          &final_written) != 1) {
    return internal_error("AES encryption failed");
  }
  out.resize(static_cast<std::size_t>(written + final_written));
  return base64_encode(iv) + "." + base64_encode(out);
}

std::optional<std::string> decrypt_payload(std::string_view encrypted,
                                           std::string_view key_base64) {
  const std::size_t dot = encrypted.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::optional<std::string> key = base64_decode(key_base64);
  std::optional<std::string> iv = base64_decode(encrypted.substr(0, dot));
  std::optional<std::string> ciphertext = base64_decode(encrypted.substr(dot + 1));
  if (!key || !iv || !ciphertext || iv->size() != kIvBytes) return std::nullopt;
  const EVP_CIPHER* cipher = cipher_for(key->size());
  if (!cipher || ciphertext->empty() || ciphertext->size() % 16 != 0) return std::nullopt;
  CipherContext context(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::string out(ciphertext->size() + 16, '\0');
  int written = 0, final_written = 0;
  if (!context ||
      EVP_DecryptInit_ex(context.get(), cipher, nullptr,
                         reinterpret_cast<const unsigned char*>(key->data()),
                         reinterpret_cast<const unsigned char*>(iv->data())) != 1 ||
      EVP_DecryptUpdate(context.get(), reinterpret_cast<unsigned char*>(out.data()), &written,
                        reinterpret_cast<const unsigned char*>(ciphertext->data()),
                        static_cast<int>(ciphertext->size())) != 1 ||
      EVP_DecryptFinal_ex(context.get(), reinterpret_cast<unsigned char*>(out.data()) + written,
                          &final_written) != 1) {
    return std::nullopt;  // wrong key or corrupted: the padding check fails
  }
  out.resize(static_cast<std::size_t>(written + final_written));
  return out;
}

}  // namespace fulcrum::flags
