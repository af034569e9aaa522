// The tamper-evident audit log: each entry's hash covers the previous entry's hash and its
// own fields (a hash chain, as in RFC 6962-style transparency logs), so editing or deleting
// a stored row breaks verification from that row on. The store assigns sequence and
// previous_hash; this file provides the hash and the verifier.
#pragma once

#include <string>
#include <vector>

#include "store/store.h"

namespace fulcrum::api {

// SHA-256 (hex) over previous_hash, sequence, at, actor, action, target, outcome, each
// length-prefixed ("<len>:<bytes>|") so no two different field tuples hash the same input.
std::string audit_entry_hash(const AuditEntry& entry);

// The entry of one call, as the server writes it for audited routes and the Python package
// for the same operations: action "<METHOD> <route pattern without the API prefix>" (e.g.
// "POST /ab-tests"), outcome "ok" below HTTP 400, "denied: 401|403", else "error: <status>".
AuditEntry call_audit_entry(UnixSeconds at, std::string actor, std::string_view method,
                            std::string_view route_pattern, std::string target, int http_status);

// Appends an entry (sequence, previous_hash and hash are filled by the store).
Result<AuditEntry> append_audit(Store& store, AuditEntry entry);

struct AuditVerification {
  bool intact = true;
  std::int64_t entries = 0;
  std::string head_hash;              // hash of the last entry ("" when empty)
  std::vector<std::string> problems;  // "entry 7: hash mismatch (row edited)", ...
};

// Walks the whole log: sequences must be 1..n without gaps, each previous_hash must equal
// the prior entry's hash and each hash must match the recomputed one. Deleting the newest
// rows leaves a valid shorter chain; pass the head hash recorded earlier (if any) as
// `expected_head` to detect that too.
Result<AuditVerification> verify_audit_chain(Store& store, const std::string& expected_head = {});

}  // namespace fulcrum::api
