#include "api/keyring.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "api/audit.h"
#include "core/ids.h"
#include "core/untrusted_json.h"
#include "store/store.h"

namespace fulcrum::api {

namespace {

constexpr std::string_view kFormat = "fulcrum-keys/1";

std::string random_secret() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  std::string bytes(kSecretBytes, '\0');
  randombytes_buf(bytes.data(), bytes.size());
  return bytes;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  std::size_t length = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &length, nullptr) != 0 ||
      length != out.size()) {
    return std::nullopt;
  }
  return out;
}

Status damaged(const std::string& path, const std::string& why) {
  return failed_precondition("key file " + path + " is damaged: " + why);
}

std::string errno_text() { return std::strerror(errno); }

// Writes `text` to `path` atomically: a 0600 temporary file in the same directory, fsync,
// rename over the old file, fsync of the directory.
Status write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  ::unlink(temporary.c_str());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return internal_error("cannot create " + temporary + ": " + errno_text());
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = errno_text();
      ::close(fd);
      ::unlink(temporary.c_str());
      return internal_error("cannot write " + temporary + ": " + why);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temporary.c_str());
    return internal_error("cannot write " + temporary + ": " + errno_text());
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    ::unlink(temporary.c_str());
    return internal_error("cannot replace " + path + ": " + errno_text());
  }
  const std::size_t slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::ok();
}

// An exclusive advisory lock on "<path>.lock" for the lifetime of the object.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      status_ = internal_error("cannot open " + path + ".lock: " + errno_text());
      return;
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        status_ = internal_error("cannot lock " + path + ".lock: " + errno_text());
        return;
      }
    }
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  const Status& status() const { return status_; }

 private:
  int fd_ = -1;
  Status status_ = Status::ok();
};

struct Loaded {
  KeySet keys;
  long long mtime_ns = 0, size = 0, inode = 0;
};

// Reads and checks the key file: owner-only mode, valid JSON of the expected shape.
Result<std::optional<Loaded>> read_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Loaded>();
    return failed_precondition("cannot read key file " + path + ": " + errno_text());
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    return failed_precondition("cannot stat key file " + path + ": " + errno_text());
  }
  if ((info.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return failed_precondition("key file " + path + " is accessible by other users (mode " +
                               mode + "); run: chmod 600 " + path);
  }
  if (info.st_size > 1024 * 1024) {
    ::close(fd);
    return damaged(path, "larger than 1 MiB");
  }
  std::string text(static_cast<std::size_t>(info.st_size), '\0');
  std::size_t read_bytes = 0;
  while (read_bytes < text.size()) {
    const ssize_t n = ::read(fd, text.data() + read_bytes, text.size() - read_bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    read_bytes += static_cast<std::size_t>(n);
  }
  ::close(fd);
  text.resize(read_bytes);
  auto keys = parse_key_file(text, path);
  if (!keys.is_ok()) return keys.status();
  Loaded loaded;
  loaded.keys = std::move(*keys);
  loaded.mtime_ns = static_cast<long long>(info.st_mtim.tv_sec) * 1'000'000'000LL +
                    info.st_mtim.tv_nsec;
  loaded.size = static_cast<long long>(info.st_size);
  loaded.inode = static_cast<long long>(info.st_ino);
  return std::optional<Loaded>(std::move(loaded));
}

std::string next_kid(const KeySet& keys) {
  int highest = 0;
  for (const TokenKey& key : keys.token_keys) {
    if (key.kid.size() > 1 && key.kid[0] == 't') highest = std::max(highest, std::atoi(key.kid.c_str() + 1));
  }
  return "t" + std::to_string(highest + 1);
}

}  // namespace

const TokenKey* KeySet::signing_key() const {
  for (auto it = token_keys.rbegin(); it != token_keys.rend(); ++it) {
    if (!it->retired_at) return &*it;
  }
  return nullptr;
}

const TokenKey* KeySet::find_token_key(std::string_view kid) const {
  for (const TokenKey& key : token_keys) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

KeySet KeySet::generate(UnixSeconds now) {
  KeySet keys;
  keys.token_keys.push_back(TokenKey{"t1", random_secret(), now, std::nullopt});
  keys.audit_secret = random_secret();
  keys.audit_created_at = now;
  return keys;
}

std::string key_file_text(const KeySet& keys) {
  nlohmann::json token_keys = nlohmann::json::array();
  for (const TokenKey& key : keys.token_keys) {
    token_keys.push_back({{"kid", key.kid},
                          {"secret", to_hex(key.secret)},
                          {"created_at", format_iso8601(key.created_at)},
                          {"retired_at", key.retired_at ? nlohmann::json(format_iso8601(*key.retired_at))
                                                        : nlohmann::json(nullptr)}});
  }
  nlohmann::json document = {
      {"format", kFormat},
      {"token_keys", token_keys},
      {"audit_key",
       {{"secret", to_hex(keys.audit_secret)}, {"created_at", format_iso8601(keys.audit_created_at)}}}};
  return document.dump(2) + "\n";
}

Result<KeySet> parse_key_file(std::string_view text, const std::string& path) {
  auto parsed = parse_untrusted_json(text, "key file");
  if (!parsed.is_ok()) return damaged(path, parsed.status().message());
  const nlohmann::json& document = *parsed;
  if (!document.is_object() || document.value("format", "") != kFormat) {
    return damaged(path, "\"format\" is not \"" + std::string(kFormat) + "\"");
  }
  auto secret_of = [&](const nlohmann::json& object, const std::string& what) -> Result<std::string> {
    if (!object.is_object() || !object.contains("secret") || !object["secret"].is_string()) {
      return damaged(path, what + " has no secret");
    }
    auto secret = from_hex(object["secret"].get<std::string>());
    if (!secret || secret->size() != kSecretBytes) {
      return damaged(path, what + "'s secret is not 64 hex characters");
    }
    return *secret;
  };
  auto time_of = [](const nlohmann::json& object, const char* name) -> std::optional<UnixSeconds> {
    if (!object.contains(name) || !object[name].is_string()) return std::nullopt;
    return parse_iso8601(object[name].get<std::string>());
  };
  KeySet keys;
  if (!document.contains("token_keys") || !document["token_keys"].is_array()) {
    return damaged(path, "\"token_keys\" is not an array");
  }
  for (const nlohmann::json& entry : document["token_keys"]) {
    if (!entry.is_object() || !entry.contains("kid") || !entry["kid"].is_string() ||
        entry["kid"].get<std::string>().empty() || entry["kid"].get<std::string>().size() > 32) {
      return damaged(path, "a token key has no kid (1..32 characters)");
    }
    TokenKey key;
    key.kid = entry["kid"].get<std::string>();
    if (key.kid.find('.') != std::string::npos) return damaged(path, "kid " + key.kid + " has a '.'");
    if (keys.find_token_key(key.kid)) return damaged(path, "kid " + key.kid + " appears twice");
    auto secret = secret_of(entry, "token key " + key.kid);
    if (!secret.is_ok()) return secret.status();
    key.secret = std::move(*secret);
    key.created_at = time_of(entry, "created_at").value_or(0);
    key.retired_at = time_of(entry, "retired_at");
    keys.token_keys.push_back(std::move(key));
  }
  if (!document.contains("audit_key")) return damaged(path, "\"audit_key\" is missing");
  auto audit_secret = secret_of(document["audit_key"], "the audit key");
  if (!audit_secret.is_ok()) return audit_secret.status();
  keys.audit_secret = std::move(*audit_secret);
  keys.audit_created_at = time_of(document["audit_key"], "created_at").value_or(0);
  return keys;
}

Result<std::string> resolve_key_file(const std::string& explicit_path,
                                     const std::string& store_location) {
  if (!explicit_path.empty()) return explicit_path;
  if (const char* env = std::getenv("FULCRUM_KEY_FILE"); env && *env) return std::string(env);
  if (store_location.starts_with("postgres://") || store_location.starts_with("postgresql://")) {
    return invalid_argument(
        "a PostgreSQL store needs --key-file or FULCRUM_KEY_FILE (every replica and CLI call "
        "on the database must use the same key file)",
        "key-file");
  }
  return store_location + ".keys";
}

std::string default_checkpoint_file(const std::string& key_file) {
  constexpr std::string_view kSuffix = ".keys";
  if (key_file.size() > kSuffix.size() && key_file.ends_with(kSuffix)) {
    return key_file.substr(0, key_file.size() - kSuffix.size()) + ".audit-checkpoints";
  }
  return key_file + ".audit-checkpoints";
}

Keyring::Keyring(std::string path, KeySet keys)
    : path_(std::move(path)), keys_(std::make_shared<const KeySet>(std::move(keys))) {}

std::shared_ptr<Keyring> Keyring::ephemeral(KeySet keys) {
  return std::shared_ptr<Keyring>(new Keyring("", std::move(keys)));
}

Result<std::shared_ptr<Keyring>> Keyring::open(const std::string& path, const Clock& clock,
                                               bool create, bool* created) {
  if (created) *created = false;
  auto loaded = read_key_file(path);
  if (!loaded.is_ok()) return loaded.status();
  if (!*loaded) {
    if (!create) return not_found("no key file at " + path);
    FileLock lock(path);
    FULCRUM_RETURN_IF_ERROR(lock.status());
    loaded = read_key_file(path);  // another process may have created it meanwhile
    if (!loaded.is_ok()) return loaded.status();
    if (!*loaded) {
      FULCRUM_RETURN_IF_ERROR(write_file_atomically(path, key_file_text(KeySet::generate(clock.now()))));
      if (created) *created = true;
      loaded = read_key_file(path);
      if (!loaded.is_ok()) return loaded.status();
      if (!*loaded) return internal_error("key file " + path + " vanished after it was written");
    }
  }
  std::shared_ptr<Keyring> keyring(new Keyring(path, std::move((*loaded)->keys)));
  keyring->stamp_ = {(*loaded)->mtime_ns, (*loaded)->size, (*loaded)->inode};
  return keyring;
}

std::shared_ptr<const KeySet> Keyring::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

Result<bool> Keyring::reload_if_changed() {
  if (path_.empty()) return false;
  struct stat info {};
  if (::stat(path_.c_str(), &info) != 0) return failed_precondition("key file " + path_ + " is gone");
  const FileStamp now{static_cast<long long>(info.st_mtim.tv_sec) * 1'000'000'000LL +
                          info.st_mtim.tv_nsec,
                      static_cast<long long>(info.st_size), static_cast<long long>(info.st_ino)};
  {
    std::lock_guard lock(mutex_);
    if (now == stamp_) return false;
  }
  auto loaded = read_key_file(path_);
  if (!loaded.is_ok()) return loaded.status();
  if (!*loaded) return failed_precondition("key file " + path_ + " is gone");
  std::lock_guard lock(mutex_);
  if ((*loaded)->keys.audit_secret != keys_->audit_secret) {
    // The audit chain is keyed by it: a different audit key would make every new entry
    // fail verification. Keep the loaded one and say so.
    return failed_precondition("key file " + path_ + " now has a different audit key; keeping "
                               "the one loaded at start (restore the file)");
  }
  keys_ = std::make_shared<const KeySet>(std::move((*loaded)->keys));
  stamp_ = {(*loaded)->mtime_ns, (*loaded)->size, (*loaded)->inode};
  return true;
}

Status Keyring::update(const std::function<Status(KeySet&)>& change) {
  if (path_.empty()) {
    std::lock_guard lock(mutex_);
    KeySet keys = *keys_;
    FULCRUM_RETURN_IF_ERROR(change(keys));
    keys_ = std::make_shared<const KeySet>(std::move(keys));
    return Status::ok();
  }
  FileLock file_lock(path_);
  FULCRUM_RETURN_IF_ERROR(file_lock.status());
  auto loaded = read_key_file(path_);
  if (!loaded.is_ok()) return loaded.status();
  if (!*loaded) return failed_precondition("key file " + path_ + " is gone");
  KeySet keys = std::move((*loaded)->keys);
  FULCRUM_RETURN_IF_ERROR(change(keys));
  FULCRUM_RETURN_IF_ERROR(write_file_atomically(path_, key_file_text(keys)));
  auto reread = read_key_file(path_);
  if (!reread.is_ok()) return reread.status();
  if (!*reread) return internal_error("key file " + path_ + " vanished after it was written");
  std::lock_guard lock(mutex_);
  keys_ = std::make_shared<const KeySet>(std::move((*reread)->keys));
  stamp_ = {(*reread)->mtime_ns, (*reread)->size, (*reread)->inode};
  return Status::ok();
}

Result<TokenKey> Keyring::rotate_token_key(const Clock& clock) {
  TokenKey added;
  FULCRUM_RETURN_IF_ERROR(update([&](KeySet& keys) {
    added = TokenKey{next_kid(keys), random_secret(), clock.now(), std::nullopt};
    keys.token_keys.push_back(added);
    return Status::ok();
  }));
  added.secret.clear();  // the caller needs the kid, not the secret
  return added;
}

Status Keyring::retire_token_key(const std::string& kid, const Clock& clock) {
  return update([&](KeySet& keys) -> Status {
    TokenKey* target = nullptr;
    int active = 0;
    for (TokenKey& key : keys.token_keys) {
      if (key.kid == kid) target = &key;
      if (!key.retired_at) ++active;
    }
    if (!target) return not_found("no token key " + kid);
    if (target->retired_at) return failed_precondition("token key " + kid + " is already retired");
    if (active <= 1) {
      return failed_precondition("token key " + kid +
                                 " is the only active key: rotate first (keys rotate-token-key)");
    }
    target->retired_at = clock.now();
    return Status::ok();
  });
}

Status Keyring::add_retired_token_key(const std::string& secret, UnixSeconds created_at,
                                      UnixSeconds retired_at) {
  return update([&](KeySet& keys) -> Status {
    for (const TokenKey& key : keys.token_keys) {
      if (key.secret == secret) return Status::ok();  // migrated before
    }
    std::string kid = "t0";
    for (int n = 0; keys.find_token_key(kid); ++n) kid = "t0-" + std::to_string(n);
    keys.token_keys.insert(keys.token_keys.begin(), TokenKey{kid, secret, created_at, retired_at});
    return Status::ok();
  });
}

Result<bool> migrate_store_token_secret(Store& store, Keyring& keyring, const Clock& clock) {
  auto stored = store.get_document("server_secret", "user_token_key");
  if (!stored.is_ok()) return stored.status();
  if (!*stored) return false;
  auto body = nlohmann::json::parse((*stored)->body, nullptr, false);
  if (body.is_object() && body.contains("key_hex") && body["key_hex"].is_string()) {
    auto secret = from_hex(body["key_hex"].get<std::string>());
    if (secret && secret->size() == kSecretBytes) {
      // Retired at once: it sat in plain text in the database, so anyone who could read the
      // file could sign tokens with it. Tokens of the old format are refused anyway.
      FULCRUM_RETURN_IF_ERROR(
          keyring.add_retired_token_key(*secret, (*stored)->created_at, clock.now()));
    }
  }
  FULCRUM_RETURN_IF_ERROR(store.erase_document("server_secret", "user_token_key"));
  return true;
}

Status migrate_store_to_key_file(Store& store, Keyring& keyring, const Clock& clock,
                                 std::vector<std::string>* notes) {
  const AuditKey audit_key(keyring.keys()->audit_secret);
  auto reanchored = reanchor_legacy_chain(store, audit_key, clock);
  if (!reanchored.is_ok()) return reanchored.status();
  if (*reanchored && notes) {
    notes->push_back("the audit log's plain SHA-256 chain was re-anchored: entries from now on "
                     "are keyed with the audit key of " + keyring.path());
  }
  auto moved = migrate_store_token_secret(store, keyring, clock);
  if (!moved.is_ok()) return moved.status();
  if (*moved) {
    AuditEntry entry;
    entry.at = clock.now();
    entry.actor = "system";
    entry.action = "keys.migrate";
    entry.target = "server_secret/user_token_key";
    entry.outcome = "ok; moved to the key file as a retired key and erased from the store";
    auto appended = append_audit(store, audit_key, std::move(entry));
    if (!appended.is_ok()) return appended.status();
    if (notes) {
      notes->push_back("the user-token secret kept in the store was moved to " + keyring.path() +
                       " (retired: tokens minted before this version must be minted again) "
                       "and erased from the store");
    }
  }
  return Status::ok();
}

}  // namespace fulcrum::api
