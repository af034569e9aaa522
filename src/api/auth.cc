#include "api/auth.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "core/ids.h"

namespace fulcrum::api {

namespace {

constexpr std::string_view kKeyPrefix = "fk_";
constexpr std::string_view kTokenPrefix = "fut2.";

void ensure_sodium() {
  static const int ready = sodium_init();
  if (ready < 0) throw std::runtime_error("libsodium failed to initialise");
}

std::string random_bytes(std::size_t count) {
  ensure_sodium();
  std::string bytes(count, '\0');
  randombytes_buf(bytes.data(), bytes.size());
  return bytes;
}

std::string base64url(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> unbase64url(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

Status unauthenticated(std::string message) {
  return {StatusCode::kUnauthenticated, std::move(message), "Authorization"};
}

}  // namespace

Result<CreatedApiKey> create_api_key(Store& store, const Clock& clock, std::string_view role,
                                     std::string label) {
  if (!parse_key_role(role)) {
    return invalid_argument("role must be admin, analyst, service or sdk, not '" + std::string(role) +
                                "'",
                            "role");
  }
  if (label.size() > 200) return invalid_argument("label is longer than 200 characters", "label");
  CreatedApiKey created;
  created.secret = std::string(kKeyPrefix) + to_hex(random_bytes(24));
  created.record.key_id = new_id("key");
  created.record.key_hash = sha256_hex(created.secret);
  created.record.role = std::string(role);
  created.record.label = std::move(label);
  created.record.created_at = clock.now();
  FULCRUM_RETURN_IF_ERROR(store.put_api_key(created.record));
  return created;
}

std::string client_key_for(const ApiKeyRecord& record) {
  return "sdk_" + sha256_hex("fulcrum sdk client key|" + record.key_hash).substr(0, 32);
}

Result<ApiKeyRecord> Authenticator::resolve_client_key(std::string_view client_key) {
  auto unknown = [&] {
    return Status{StatusCode::kUnauthenticated, "unknown or revoked SDK client key", "clientKey"};
  };
  if (!client_key.starts_with("sdk_") || client_key.size() != 36) return unknown();
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(client_keys_mutex_);
  if (!client_keys_fetched_ || now - *client_keys_fetched_ >= key_cache_) {
    Result<std::vector<ApiKeyRecord>> keys = store_.list_api_keys();
    if (!keys.is_ok()) return keys.status();
    client_keys_.clear();
    for (ApiKeyRecord& key : *keys) {
      if (key.role != "sdk") continue;
      std::string id = client_key_for(key);
      client_keys_.emplace(std::move(id), std::move(key));
    }
    client_keys_fetched_ = now;
  }
  auto it = client_keys_.find(std::string(client_key));
  if (it == client_keys_.end()) return unknown();
  if (it->second.revoked_at && *it->second.revoked_at <= clock_.now()) return unknown();
  return it->second;
}

Authenticator::Authenticator(Store& store, const Clock& clock, std::shared_ptr<Keyring> keyring,
                             std::chrono::milliseconds key_cache, UnixSeconds max_user_token_ttl)
    : store_(store),
      clock_(clock),
      keyring_(std::move(keyring)),
      key_cache_(key_cache),
      max_user_token_ttl_(max_user_token_ttl) {
  ensure_sodium();
  static_assert(kSecretBytes == crypto_auth_KEYBYTES);
  if (!keyring_) throw std::invalid_argument("Authenticator needs a keyring");
}

Result<AuthContext> Authenticator::authenticate(std::string_view header) {
  AuthContext context;
  context.actor = "anonymous";
  if (header.empty()) return context;
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() ||
      strncasecmp(header.data(), kBearer.data(), kBearer.size()) != 0) {
    return unauthenticated("Authorization header must be 'Bearer <api key or user token>'");
  }
  std::string_view credential = header.substr(kBearer.size());
  while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);

  if (credential.starts_with(kTokenPrefix)) {
    Result<VerifiedUserToken> token = verify_user_token(credential);
    if (!token.is_ok()) return token.status();
    context.authenticated = true;
    context.role = Role::kUser;
    context.user_id = token->user_id;
    context.actor = "user:" + token->user_id;
    context.minted_by = token->minted_by;
    return context;
  }
  if (credential.starts_with("fut1.")) {
    return unauthenticated("user tokens of the old format (fut1) are no longer accepted: "
                           "mint a new one");
  }
  if (!credential.starts_with(kKeyPrefix)) return unauthenticated("unrecognised credential");

  const std::string key_hash = sha256_hex(credential);
  std::optional<ApiKeyRecord> record;
  bool cached = false;
  const auto now = std::chrono::steady_clock::now();
  if (key_cache_.count() > 0) {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(key_hash);
    if (it != cache_.end() && now - it->second.fetched < key_cache_) {
      record = it->second.record;
      cached = true;
    }
  }
  if (!cached) {
    Result<std::optional<ApiKeyRecord>> found = store_.find_api_key_by_hash(key_hash);
    if (!found.is_ok()) return found.status();
    record = *found;
    if (key_cache_.count() > 0) {
      std::lock_guard lock(cache_mutex_);
      if (cache_.size() > 10'000) cache_.clear();  // bounds memory under credential spraying
      cache_[key_hash] = CachedKey{record, now};
    }
  }
  if (!record) return unauthenticated("unknown API key");
  if (record->revoked_at && *record->revoked_at <= clock_.now()) {
    return unauthenticated("API key " + record->key_id + " was revoked");
  }
  std::optional<Role> role = parse_key_role(record->role);
  if (!role) return unauthenticated("API key has an unknown role");
  context.authenticated = true;
  context.role = *role;
  context.actor = record->key_id;
  context.label = record->label;
  return context;
}

std::optional<AuthContext> Authenticator::authenticate_known(std::string_view header) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() ||
      strncasecmp(header.data(), kBearer.data(), kBearer.size()) != 0) {
    return std::nullopt;
  }
  std::string_view credential = header.substr(kBearer.size());
  while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);
  if (credential.starts_with(kTokenPrefix)) {
    // A valid MAC is no guess (forging one needs the key), so its revocation may be looked
    // up (one cached point read); invalid tokens never reach the store.
    Result<VerifiedUserToken> token = check_user_token(credential);
    if (!token.is_ok()) return std::nullopt;
    auto revoked = revoked_at(token->user_id, /*cached_only=*/false);
    if (!revoked.is_ok() || (*revoked && token->issued_at <= **revoked)) return std::nullopt;
    AuthContext context;
    context.authenticated = true;
    context.role = Role::kUser;
    context.user_id = token->user_id;
    context.actor = "user:" + token->user_id;
    context.minted_by = token->minted_by;
    return context;
  }
  if (!credential.starts_with(kKeyPrefix) || key_cache_.count() <= 0) return std::nullopt;
  const std::string key_hash = sha256_hex(credential);
  std::optional<ApiKeyRecord> record;
  {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(key_hash);
    if (it == cache_.end() || std::chrono::steady_clock::now() - it->second.fetched >= key_cache_) {
      return std::nullopt;
    }
    record = it->second.record;
  }
  if (!record || (record->revoked_at && *record->revoked_at <= clock_.now())) return std::nullopt;
  std::optional<Role> role = parse_key_role(record->role);
  if (!role) return std::nullopt;
  AuthContext context;
  context.authenticated = true;
  context.role = *role;
  context.actor = record->key_id;
  return context;
}

Result<std::string> Authenticator::mint_user_token(const std::string& user_id,
                                                   UnixSeconds ttl_seconds,
                                                   const std::string& minted_by,
                                                   UnixSeconds* expires_at) {
  if (!is_valid_external_id(user_id)) {
    return invalid_argument("user_id must be 1..128 characters of [A-Za-z0-9_.:@-]", "user_id");
  }
  if (ttl_seconds <= 0 || ttl_seconds > max_user_token_ttl_) {
    return invalid_argument("ttl_seconds must be between 1 and " +
                                std::to_string(max_user_token_ttl_),
                            "ttl_seconds");
  }
  std::shared_ptr<const KeySet> keys = keyring_->keys();
  const TokenKey* key = keys->signing_key();
  if (!key) return failed_precondition("the key file has no active token key (rotate one in)");
  // Issued strictly after a revocation in the same second, so "revoke, then sign in again"
  // gives a token that works.
  UnixSeconds issued_at = clock_.now();
  auto revoked = revoked_at(user_id, /*cached_only=*/false);
  if (!revoked.is_ok()) return revoked.status();
  if (*revoked && **revoked >= issued_at) issued_at = **revoked + 1;
  const UnixSeconds expiry = issued_at + ttl_seconds;
  if (expires_at) *expires_at = expiry;
  const std::string payload = base64url(user_id + "\n" + std::to_string(issued_at) + "\n" +
                                        std::to_string(expiry) + "\n" + minted_by);
  const std::string signed_part = std::string(kTokenPrefix) + key->kid + "." + payload;
  unsigned char mac[crypto_auth_BYTES];
  crypto_auth(mac, reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(),
              reinterpret_cast<const unsigned char*>(key->secret.data()));
  return signed_part + "." +
         base64url(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}

Result<VerifiedUserToken> Authenticator::check_user_token(std::string_view token) {
  if (!token.starts_with(kTokenPrefix)) return unauthenticated("not a user token");
  if (token.size() > 1024) return unauthenticated("malformed user token");
  const std::size_t kid_end = token.find('.', kTokenPrefix.size());
  const std::size_t dot = token.rfind('.');
  if (kid_end == std::string_view::npos || dot <= kid_end + 1 || kid_end == kTokenPrefix.size()) {
    return unauthenticated("malformed user token");
  }
  const std::string kid(token.substr(kTokenPrefix.size(), kid_end - kTokenPrefix.size()));
  std::shared_ptr<const KeySet> keys = keyring_->keys();
  const TokenKey* key = keys->find_token_key(kid);
  if (!key) {
    // Perhaps another process just rotated: look at the key file again (at most 4 times a
    // second, so unknown kids cannot make every request stat it).
    const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now().time_since_epoch())
                                    .count();
    std::int64_t last = last_keyring_reload_ns_.load();
    if (now_ns - last > 250'000'000 && last_keyring_reload_ns_.compare_exchange_strong(last, now_ns)) {
      auto reloaded = keyring_->reload_if_changed();
      if (reloaded.is_ok() && *reloaded) {
        keys = keyring_->keys();
        key = keys->find_token_key(kid);
      }
    }
  }
  if (!key) return unauthenticated("user token signed with an unknown key");
  if (key->retired_at) return unauthenticated("user token signed with retired key " + kid);
  const std::string_view signed_part = token.substr(0, dot);
  std::optional<std::string> mac = unbase64url(token.substr(dot + 1));
  if (!mac || mac->size() != crypto_auth_BYTES ||
      crypto_auth_verify(reinterpret_cast<const unsigned char*>(mac->data()),
                         reinterpret_cast<const unsigned char*>(signed_part.data()),
                         signed_part.size(),
                         reinterpret_cast<const unsigned char*>(key->secret.data())) != 0) {
    return unauthenticated("user token signature is invalid");
  }
  std::optional<std::string> payload = unbase64url(signed_part.substr(kid_end + 1));
  if (!payload) return unauthenticated("malformed user token");
  std::vector<std::string> fields;
  for (std::size_t from = 0;;) {
    const std::size_t newline = payload->find('\n', from);
    fields.push_back(payload->substr(from, newline - from));
    if (newline == std::string::npos) break;
    from = newline + 1;
  }
  if (fields.size() != 4) return unauthenticated("malformed user token");
  VerifiedUserToken verified;
  verified.user_id = fields[0];
  verified.kid = kid;
  verified.minted_by = fields[3];
  try {
    std::size_t used = 0;
    verified.issued_at = std::stoll(fields[1], &used);
    if (used != fields[1].size()) throw std::invalid_argument("issued_at");
    verified.expires_at = std::stoll(fields[2], &used);
    if (used != fields[2].size()) throw std::invalid_argument("expires_at");
  } catch (const std::exception&) {
    return unauthenticated("malformed user token");
  }
  const UnixSeconds now = clock_.now();
  // The cap holds at verification too: a token claiming a longer life (minted by an older
  // build, or by anyone who obtained a key) is refused, as is one issued in the future.
  constexpr UnixSeconds kClockSkew = 60;
  if (verified.issued_at > now + kClockSkew) return unauthenticated("user token issued in the future");
  if (verified.expires_at - verified.issued_at > max_user_token_ttl_) {
    return unauthenticated("user token lifetime exceeds the maximum of " +
                           std::to_string(max_user_token_ttl_) + " s");
  }
  if (now >= verified.expires_at) return unauthenticated("user token expired");
  if (!is_valid_external_id(verified.user_id)) return unauthenticated("malformed user token");
  return verified;
}

Result<std::optional<UnixSeconds>> Authenticator::revoked_at(const std::string& user_id,
                                                             bool cached_only, bool* known) {
  if (known) *known = true;
  const auto now = std::chrono::steady_clock::now();
  if (key_cache_.count() > 0) {
    std::lock_guard lock(revocations_mutex_);
    auto it = revocations_.find(user_id);
    if (it != revocations_.end() && now - it->second.fetched < key_cache_) {
      return it->second.revoked_at;
    }
  }
  if (cached_only) {
    if (known) *known = false;
    return std::optional<UnixSeconds>();
  }
  auto stored = store_.user_tokens_revoked_at(user_id);
  if (!stored.is_ok()) return stored.status();
  if (key_cache_.count() > 0) {
    std::lock_guard lock(revocations_mutex_);
    if (revocations_.size() > 10'000) revocations_.clear();  // bounds memory
    revocations_[user_id] = CachedRevocation{*stored, now};
  }
  return *stored;
}

Result<VerifiedUserToken> Authenticator::verify_user_token(std::string_view token) {
  Result<VerifiedUserToken> verified = check_user_token(token);
  if (!verified.is_ok()) return verified;
  auto revoked = revoked_at(verified->user_id, /*cached_only=*/false);
  if (!revoked.is_ok()) return revoked.status();
  if (*revoked && verified->issued_at <= **revoked) {
    return unauthenticated("user token was revoked");
  }
  return verified;
}

Status Authenticator::revoke_user_tokens(const std::string& user_id) {
  if (Status valid = is_valid_external_id(user_id)
                         ? Status::ok()
                         : invalid_argument("user_id must be 1..128 characters of "
                                            "[A-Za-z0-9_.:@-]",
                                            "user_id");
      !valid.is_ok()) {
    return valid;
  }
  const UnixSeconds now = clock_.now();
  FULCRUM_RETURN_IF_ERROR(store_.revoke_user_tokens(user_id, now));
  std::lock_guard lock(revocations_mutex_);
  auto& cached = revocations_[user_id];
  cached.revoked_at = std::max(cached.revoked_at.value_or(now), now);
  cached.fetched = std::chrono::steady_clock::now();
  return Status::ok();
}

}  // namespace fulcrum::api
