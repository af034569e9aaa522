// Access control: API keys (random secrets shown once, stored only as SHA-256 hashes, each
// with a role) and end-user tokens. Both arrive as `Authorization: Bearer <secret-or-token>`.
//
// A user token is "fut2.<kid>.<payload>.<mac>": the payload (base64url) holds the user id,
// issue time, expiry and the API key that minted it; the MAC is libsodium's crypto_auth
// (HMAC-SHA-512-256) under the token key `kid` of the key file (api/keyring.h), so keys can
// be rotated: every unretired key verifies, the newest signs. Verification enforces the TTL
// cap (expiry - issue time <= max TTL, issue time not in the future) whatever the token
// says, and refuses tokens of a user whose tokens were revoked at or after their issue time.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "api/http.h"
#include "api/keyring.h"
#include "core/time.h"
#include "store/store.h"

namespace fulcrum::api {

struct CreatedApiKey {
  ApiKeyRecord record;
  std::string secret;  // "fk_<48 hex>": returned to the caller once, never stored
};

// Creates and stores a key with role admin/analyst/service/sdk (kInvalidArgument otherwise).
Result<CreatedApiKey> create_api_key(Store& store, const Clock& clock, std::string_view role,
                                     std::string label);

// The public client key of an sdk API key: "sdk_" + 32 hex characters of
// SHA-256("fulcrum sdk client key|" + key_hash). GrowthBook SDKs put it in URLs
// (GET /api/features/{clientKey}, /sub/{clientKey}, POST /api/eval/{clientKey}) and apps ship
// it inside browser and mobile bundles, so it must not be the secret: it only reads what an
// SDK may read and cannot be turned back into the secret (which OFREP sends as Bearer).
std::string client_key_for(const ApiKeyRecord& record);

// What a valid user token says.
struct VerifiedUserToken {
  std::string user_id;
  UnixSeconds issued_at = 0;
  UnixSeconds expires_at = 0;
  std::string kid;        // the token key that signed it
  std::string minted_by;  // the API key id that minted it ("" when minted in-process)
};

class Authenticator {
 public:
  // Token keys come from `keyring` (read on every call, so a reload or rotation applies at
  // once). API-key lookups and per-user token revocations are cached for `key_cache` so hot
  // paths skip the store; a revocation by another process takes effect within that time.
  Authenticator(Store& store, const Clock& clock, std::shared_ptr<Keyring> keyring,
                std::chrono::milliseconds key_cache,
                UnixSeconds max_user_token_ttl = 30 * kSecondsPerDay);

  // The identity behind an Authorization header value; an empty header gives an
  // unauthenticated context, a bad or revoked credential kUnauthenticated.
  Result<AuthContext> authenticate(std::string_view authorization_header);
  // The identity behind a credential that is known good without asking the store: a valid
  // user token, or an API key this process verified within `key_cache` and not revoked.
  // nullopt otherwise (including unknown keys). Lets a rate-limited address keep using a
  // key it used successfully while guesses from it are refused unseen.
  std::optional<AuthContext> authenticate_known(std::string_view authorization_header);

  // The live (unrevoked) sdk key whose client_key_for() is `client_key`, or
  // kUnauthenticated with field "clientKey". Keys are re-listed from the store at most once
  // per `key_cache` (a revocation is honoured within it), so unknown keys cannot make every
  // request scan the key table.
  Result<ApiKeyRecord> resolve_client_key(std::string_view client_key);

  // A token for `user_id` valid for `ttl_seconds` (1..max TTL) from now, signed with the
  // keyring's signing key; `minted_by` is the minting API key's id. Issued after any
  // revocation of the user (so a token minted right after a revocation works).
  Result<std::string> mint_user_token(const std::string& user_id, UnixSeconds ttl_seconds,
                                      const std::string& minted_by = {},
                                      UnixSeconds* expires_at = nullptr);
  // A valid, unexpired, unrevoked token's contents; kUnauthenticated otherwise.
  Result<VerifiedUserToken> verify_user_token(std::string_view token);

  // Refuses every token of `user_id` issued up to now (stored, so every replica honours it
  // within `key_cache`; this process at once).
  Status revoke_user_tokens(const std::string& user_id);

  Keyring& keyring() { return *keyring_; }

 private:
  // Signature, format and TTL checks: no store access.
  Result<VerifiedUserToken> check_user_token(std::string_view token);
  // The user's revocation point from the cache, or the store when the cache has none (or
  // only an old one); `cached_only` never asks the store (nullopt result: unknown).
  Result<std::optional<UnixSeconds>> revoked_at(const std::string& user_id, bool cached_only,
                                                bool* known = nullptr);

  Store& store_;
  const Clock& clock_;
  std::shared_ptr<Keyring> keyring_;
  std::chrono::milliseconds key_cache_;
  UnixSeconds max_user_token_ttl_;
  struct CachedRevocation {
    std::optional<UnixSeconds> revoked_at;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex revocations_mutex_;
  std::unordered_map<std::string, CachedRevocation> revocations_;  // by user id
  std::atomic<std::int64_t> last_keyring_reload_ns_{0};
  struct CachedKey {
    std::optional<ApiKeyRecord> record;
    std::chrono::steady_clock::time_point fetched;
  };
  std::mutex cache_mutex_;
  std::unordered_map<std::string, CachedKey> cache_;  // by key hash
  std::mutex client_keys_mutex_;
  std::unordered_map<std::string, ApiKeyRecord> client_keys_;  // by client key
  std::optional<std::chrono::steady_clock::time_point> client_keys_fetched_;
};

}  // namespace fulcrum::api
