// Access control: API keys (random secrets shown once, stored only as SHA-256 hashes, each
// with a role) and end-user tokens (user id + expiry, authenticated with libsodium's
// crypto_auth, i.e. HMAC-SHA-512-256, under a server secret). Both arrive as
// `Authorization: Bearer <secret-or-token>`.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "api/http.h"
#include "core/time.h"
#include "store/store.h"

namespace fulcrum::api {

struct CreatedApiKey {
  ApiKeyRecord record;
  std::string secret;  // "fk_<48 hex>": returned to the caller once, never stored
};

// Creates and stores a key with role admin/analyst/service (kInvalidArgument otherwise).
Result<CreatedApiKey> create_api_key(Store& store, const Clock& clock, std::string_view role,
                                     std::string label);

// Length of the user-token signing secret (crypto_auth_KEYBYTES).
constexpr std::size_t kUserTokenSecretBytes = 32;
// A fresh random signing secret.
std::string random_token_secret();

class Authenticator {
 public:
  // `token_secret` must be kUserTokenSecretBytes raw bytes. API-key lookups are cached for
  // `key_cache` so hot paths skip the store; a revocation takes effect within that time.
  Authenticator(Store& store, const Clock& clock, std::string token_secret,
                std::chrono::milliseconds key_cache);

  // The identity behind an Authorization header value; an empty header gives an
  // unauthenticated context, a bad or revoked credential kUnauthenticated.
  Result<AuthContext> authenticate(std::string_view authorization_header);
  // The identity behind a credential that is known good without asking the store: a valid
  // user token, or an API key this process verified within `key_cache` and not revoked.
  // nullopt otherwise (including unknown keys). Lets a rate-limited address keep using a
  // key it used successfully while guesses from it are refused unseen.
  std::optional<AuthContext> authenticate_known(std::string_view authorization_header);

  // A token for `user_id` valid for `ttl_seconds` from now: "fut1.<payload>.<mac>".
  Result<std::string> mint_user_token(const std::string& user_id, UnixSeconds ttl_seconds,
                                      UnixSeconds* expires_at = nullptr) const;
  // The user id inside a valid, unexpired token.
  Result<std::string> verify_user_token(std::string_view token) const;

 private:
  Store& store_;
  const Clock& clock_;
  std::string token_secret_;
  std::chrono::milliseconds key_cache_;
  struct CachedKey {
    std::optional<ApiKeyRecord> record;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex cache_mutex_;
  std::unordered_map<std::string, CachedKey> cache_;  // by key hash
};

}  // namespace fulcrum::api
