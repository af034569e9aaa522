// GrowthBook payload encryption (SDK spec "encryptedFeatures"): AES-CBC with PKCS#7 padding,
// a random 16-byte IV, written as base64(iv) + "." + base64(ciphertext); the key is given as
// base64 of 16 raw bytes (AES-128; 24 or 32 bytes select AES-192/256, as WebCrypto in the
// SDKs accepts them). Implemented with OpenSSL 3's EVP interface.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fulcrum::flags {

// A new random AES-128 key, base64.
std::string generate_encryption_key();

// kInvalidArgument (field "encryption_key") for a key that is not base64 of 16/24/32 bytes.
Result<std::string> encrypt_payload(std::string_view plaintext, std::string_view key_base64);

// The plaintext, or nullopt for anything malformed (bad base64, missing ".", IV not 16
// bytes, wrong key length, wrong key / bad padding), like the SDKs' decrypt().
std::optional<std::string> decrypt_payload(std::string_view encrypted, std::string_view key_base64);

// Strict standard base64 (RFC 4648 section 4, '=' padding required to a multiple of 4).
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace fulcrum::flags
