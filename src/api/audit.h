// The tamper-evident audit log. Each entry's hash is an HMAC-SHA256, under the audit key of
// the key file (api/keyring.h, never in the store), over the previous entry's hash and its
// own fields: a hash chain (as in RFC 6962-style transparency logs) that someone with the
// database but without the key can neither edit nor extend, since every recomputed hash
// would need the key. Truncation (deleting the newest rows, or all of them) leaves a valid
// shorter chain, so the head is also exported outside the store: signed checkpoints
// (sequence, hash, time, Ed25519 signature by a key derived from the audit key) appended
// to a checkpoint file and served at GET /audit/head. verify_audit_chain checks the chain
// and every checkpoint. The store assigns sequence and previous_hash.
//
// Stores written before the key file have a plain SHA-256 chain. reanchor_legacy_chain
// appends one keyed "audit.reanchor" entry over its head: from there on the chain is keyed,
// and the legacy rows stay verifiable as a plain chain that must end exactly at the hash the
// keyed entry covers (docs/operations.md, "Audit anchoring").
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"
#include "store/store.h"

namespace fulcrum::api {

inline constexpr std::string_view kReanchorAction = "audit.reanchor";

// A signed statement "the audit log had `sequence` entries, the newest with `hash`, at `at`".
struct AuditCheckpoint {
  std::int64_t sequence = 0;  // 0: the log was empty
  std::string hash;           // hash of entry `sequence` ("" when empty)
  UnixSeconds at = 0;
  std::string key_id;     // first 16 hex characters of SHA-256 of the public key
  std::string signature;  // Ed25519 over signed_text(), hex

  std::string signed_text() const;  // "fulcrum-audit-checkpoint/1|<sequence>|<hash>|<at>"
  std::string to_json_line() const;  // one JSON object, no newline
};

class AuditKey {
 public:
  // `secret` is the key file's audit secret (kSecretBytes raw bytes).
  explicit AuditKey(const std::string& secret);

  // HMAC-SHA256 (hex) over previous_hash, sequence, at, actor, action, target, outcome, each
  // length-prefixed ("<len>:<bytes>|") so no two different field tuples give the same input.
  std::string entry_hash(const AuditEntry& entry) const;
  // entry_hash bound to this key, as the store's compute_hash callback wants it.
  std::function<std::string(const AuditEntry&)> hasher() const;

  AuditCheckpoint checkpoint(std::int64_t sequence, std::string hash, UnixSeconds at) const;
  bool signature_valid(const AuditCheckpoint& checkpoint) const;
  std::string public_key_hex() const;
  const std::string& key_id() const { return key_id_; }

 private:
  std::string mac_key_;     // HMAC key of the chain
  std::string public_key_;  // Ed25519, raw
  std::string signing_key_;
  std::string key_id_;
};

// SHA-256 (hex) of the same fields without a key: the chain of stores written before the
// key file, still verified up to their re-anchoring entry.
std::string plain_audit_entry_hash(const AuditEntry& entry);

// The entry of one call, as the server writes it for audited routes and the Python package
// for the same operations: action "<METHOD> <route pattern without the API prefix>" (e.g.
// "POST /ab-tests"), outcome "ok" below HTTP 400, "denied: 401|403", else "error: <status>".
AuditEntry call_audit_entry(UnixSeconds at, std::string actor, std::string_view method,
                            std::string_view route_pattern, std::string target, int http_status);

// Appends an entry (sequence, previous_hash and hash are filled by the store).
Result<AuditEntry> append_audit(Store& store, const AuditKey& key, AuditEntry entry);

// When the newest entry is not keyed by `key` but is a valid plain SHA-256 chain head (a
// store from before the key file), appends the re-anchoring entry. Returns true when it did.
// A head that is neither (damaged, or keyed by another key) is left alone: verify reports it.
Result<bool> reanchor_legacy_chain(Store& store, const AuditKey& key, const Clock& clock);

// The checkpoint of the current head, signed now.
Result<AuditCheckpoint> checkpoint_head(Store& store, const AuditKey& key, const Clock& clock);
// Appends one line to `path` (created 0600, O_APPEND, fsync'd).
Status append_checkpoint_file(const std::string& path, const AuditCheckpoint& checkpoint);
// checkpoint_head + append_checkpoint_file, skipped when `path` is empty.
Status write_checkpoint(Store& store, const AuditKey& key, const Clock& clock,
                        const std::string& path);

struct CheckpointLine {
  int line = 0;
  std::optional<AuditCheckpoint> checkpoint;  // nullopt: the line did not parse
};
// The lines of a checkpoint file; kNotFound when it does not exist.
Result<std::vector<CheckpointLine>> read_checkpoint_file(const std::string& path);

struct AuditVerification {
  bool intact = true;
  std::int64_t entries = 0;
  std::int64_t legacy_entries = 0;  // plain SHA-256 entries before the re-anchoring entry
  std::int64_t checkpoints = 0;     // checkpoint lines checked
  std::string head_hash;            // hash of the last entry ("" when empty)
  std::vector<std::string> problems;  // "entry 7: hash does not match ...", ...
};

// Walks the whole log: sequences must be 1..n without gaps, each previous_hash must equal
// the prior entry's hash and each hash must be the keyed hash of its entry (plain SHA-256
// before a valid re-anchoring entry). Then every checkpoint must carry a valid signature
// and name an entry that still exists with that hash (a missing one: truncation; another
// hash: the log was rewritten). `expected_head`, when given, must be the hash of some entry.
Result<AuditVerification> verify_audit_chain(Store& store, const AuditKey& key,
                                             const std::vector<CheckpointLine>& checkpoints = {},
                                             const std::string& expected_head = {});

}  // namespace fulcrum::api
