#include "api/auth.h"

#include <sodium.h>

#include <stdexcept>

#include "core/ids.h"

namespace fulcrum::api {

namespace {

constexpr std::string_view kKeyPrefix = "fk_";
constexpr std::string_view kTokenPrefix = "fut1.";

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

std::string random_token_secret() { return random_bytes(kUserTokenSecretBytes); }

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

Authenticator::Authenticator(Store& store, const Clock& clock, std::string token_secret,
                             std::chrono::milliseconds key_cache)
    : store_(store), clock_(clock), token_secret_(std::move(token_secret)), key_cache_(key_cache) {
  ensure_sodium();
  if (token_secret_.size() != crypto_auth_KEYBYTES) {
    throw std::invalid_argument("user token secret must be 32 bytes");
  }
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
    Result<std::string> user_id = verify_user_token(credential);
    if (!user_id.is_ok()) return user_id.status();
    context.authenticated = true;
    context.role = Role::kUser;
    context.user_id = *user_id;
    context.actor = "user:" + *user_id;
    return context;
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
    Result<AuthContext> verified = authenticate(header);  // signature check, no store access
    if (verified.is_ok() && verified->authenticated) return *verified;
    return std::nullopt;
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
                                                   UnixSeconds* expires_at) const {
  if (!is_valid_external_id(user_id)) {
    return invalid_argument("user_id must be 1..128 characters of [A-Za-z0-9_.:@-]", "user_id");
  }
  if (ttl_seconds <= 0 || ttl_seconds > 30 * kSecondsPerDay) {
    return invalid_argument("ttl_seconds must be between 1 and 2592000 (30 days)", "ttl_seconds");
  }
  const UnixSeconds expiry = clock_.now() + ttl_seconds;
  if (expires_at) *expires_at = expiry;
  const std::string payload = base64url(user_id + "\n" + std::to_string(expiry));
  unsigned char mac[crypto_auth_BYTES];
  const std::string signed_part = std::string(kTokenPrefix) + payload;
  crypto_auth(mac, reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(),
              reinterpret_cast<const unsigned char*>(token_secret_.data()));
  return signed_part + "." +
         base64url(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}

Result<std::string> Authenticator::verify_user_token(std::string_view token) const {
  if (!token.starts_with(kTokenPrefix)) return unauthenticated("not a user token");
  const std::size_t dot = token.rfind('.');
  if (dot <= kTokenPrefix.size()) return unauthenticated("malformed user token");
  const std::string_view signed_part = token.substr(0, dot);
  std::optional<std::string> mac = unbase64url(token.substr(dot + 1));
  if (!mac || mac->size() != crypto_auth_BYTES ||
      crypto_auth_verify(reinterpret_cast<const unsigned char*>(mac->data()),
                         reinterpret_cast<const unsigned char*>(signed_part.data()),
                         signed_part.size(),
                         reinterpret_cast<const unsigned char*>(token_secret_.data())) != 0) {
    return unauthenticated("user token signature is invalid");
  }
  std::optional<std::string> payload = unbase64url(signed_part.substr(kTokenPrefix.size()));
  if (!payload) return unauthenticated("malformed user token");
  const std::size_t newline = payload->find('\n');
  if (newline == std::string::npos) return unauthenticated("malformed user token");
  UnixSeconds expiry = 0;
  try {
    expiry = std::stoll(payload->substr(newline + 1));
  } catch (const std::exception&) {
    return unauthenticated("malformed user token");
  }
  if (clock_.now() >= expiry) return unauthenticated("user token expired");
  return payload->substr(0, newline);
}

}  // namespace fulcrum::api
