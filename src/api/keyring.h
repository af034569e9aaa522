// The server's secrets, kept out of the store: the user-token signing keys (several, each
// with a key id, so the signing key can be rotated while tokens signed by the previous one
// still verify until it is retired) and the audit key (HMAC of the audit chain, and the seed
// of the Ed25519 key that signs audit checkpoints). They live in one JSON key file, mode
// 0600, created on first use; a file readable by group or others is refused (as ssh does).
//
// Which file: `--key-file` (CLI) / an explicit path beats the FULCRUM_KEY_FILE environment
// variable, which beats the default `<sqlite file>.keys` next to an SQLite store. A
// PostgreSQL store has no "next to": its key file must be given (every replica and every
// CLI call on that database must use the same file). docs/operations.md covers backups and
// rotation.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace fulcrum {
class Store;
}

namespace fulcrum::api {

inline constexpr std::size_t kSecretBytes = 32;

struct TokenKey {
  std::string kid;     // "t1", "t2", ...: carried in every token it signs
  std::string secret;  // kSecretBytes raw bytes
  UnixSeconds created_at = 0;
  std::optional<UnixSeconds> retired_at;  // set: tokens signed with it no longer verify
};

struct KeySet {
  std::vector<TokenKey> token_keys;  // oldest first
  std::string audit_secret;          // kSecretBytes raw bytes
  UnixSeconds audit_created_at = 0;

  // The newest key that is not retired (what new tokens are signed with); null if none.
  const TokenKey* signing_key() const;
  const TokenKey* find_token_key(std::string_view kid) const;
  // Fresh random keys: one token key "t1" and an audit key.
  static KeySet generate(UnixSeconds now);
};

// Serialisation of the key file (JSON): {"format":"fulcrum-keys/1","token_keys":[{"kid",
// "secret" (hex),"created_at","retired_at"}],"audit_key":{"secret","created_at"}}.
std::string key_file_text(const KeySet& keys);
Result<KeySet> parse_key_file(std::string_view text, const std::string& path);

// The key file to use for `store_location` given an explicit path (may be empty): explicit,
// else $FULCRUM_KEY_FILE, else "<sqlite path>.keys"; kInvalidArgument (field "key-file") for
// a PostgreSQL store without either.
Result<std::string> resolve_key_file(const std::string& explicit_path,
                                     const std::string& store_location);

// Where audit checkpoints go by default: the key file's path with ".keys" replaced by
// ".audit-checkpoints" (or that suffix appended).
std::string default_checkpoint_file(const std::string& key_file);

class Keyring {
 public:
  // Keys held in memory only (tests, benchmarks, fuzzers): rotation works, nothing is saved.
  static std::shared_ptr<Keyring> ephemeral(KeySet keys);
  // Loads the key file at `path`; when it does not exist and `create` is set, generates keys
  // and writes the file (0600) first. kNotFound when absent and !create; kFailedPrecondition
  // when readable by others or damaged.
  static Result<std::shared_ptr<Keyring>> open(const std::string& path, const Clock& clock,
                                               bool create, bool* created = nullptr);

  std::shared_ptr<const KeySet> keys() const;
  const std::string& path() const { return path_; }  // empty when ephemeral

  // Re-reads the file when it changed on disk (another process rotated or retired a key).
  // Cheap when unchanged (one stat). Returns true when new keys were loaded.
  Result<bool> reload_if_changed();
  // Adds a new signing key (returns its kid). Written under an exclusive lock on
  // "<path>.lock" after re-reading the file, so concurrent rotations never lose a key.
  Result<TokenKey> rotate_token_key(const Clock& clock);
  // Retires `kid`: tokens it signed fail from now on. The signing key cannot be retired
  // unless another unretired key exists (rotate first).
  Status retire_token_key(const std::string& kid, const Clock& clock);
  // Adds an already retired key (the migration of a secret earlier versions kept in the
  // store): kept for the record, verifies nothing.
  Status add_retired_token_key(const std::string& secret, UnixSeconds created_at,
                               UnixSeconds retired_at);

 private:
  explicit Keyring(std::string path, KeySet keys);
  // Applies `change` to the newest keys (re-read under the file lock) and saves them.
  Status update(const std::function<Status(KeySet&)>& change);

  std::string path_;
  mutable std::mutex mutex_;
  std::shared_ptr<const KeySet> keys_;
  struct FileStamp {
    long long mtime_ns = 0, size = 0, inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  FileStamp stamp_;
};

// Moves the user-token secret that versions before the key file kept in the store
// (document kind "server_secret", id "user_token_key") into `keyring` as a retired key
// ("t0"), then erases the document from the store. Safe to run on every start: a store
// without that document is left alone. Returns true when something was migrated.
Result<bool> migrate_store_token_secret(Store& store, Keyring& keyring, const Clock& clock);

// What every process that opens a store with a key file runs first (serve, keys, flags, the
// Python package): re-anchors a legacy plain audit chain (audit.h), then moves a store-kept
// token secret out, recording that in the audit log ("keys.migrate"). `notes` (optional)
// gets one line per migration that did something, for the operator.
Status migrate_store_to_key_file(Store& store, Keyring& keyring, const Clock& clock,
                                 std::vector<std::string>* notes = nullptr);

}  // namespace fulcrum::api
