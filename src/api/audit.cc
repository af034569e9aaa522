#include "api/audit.h"

#include "api/server.h"
#include "core/ids.h"

namespace fulcrum::api {

namespace {

void append_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
  out += '|';
}

}  // namespace

std::string audit_entry_hash(const AuditEntry& entry) {
  std::string input;
  input.reserve(128 + entry.actor.size() + entry.action.size() + entry.target.size() +
                entry.outcome.size());
  append_field(input, entry.previous_hash);
  append_field(input, std::to_string(entry.sequence));
  append_field(input, std::to_string(entry.at));
  append_field(input, entry.actor);
  append_field(input, entry.action);
  append_field(input, entry.target);
  append_field(input, entry.outcome);
  return sha256_hex(input);
}

AuditEntry call_audit_entry(UnixSeconds at, std::string actor, std::string_view method,
                            std::string_view route_pattern, std::string target, int http_status) {
  if (route_pattern.starts_with(kApiPrefix)) route_pattern.remove_prefix(kApiPrefix.size());
  AuditEntry entry;
  entry.at = at;
  entry.actor = std::move(actor);
  entry.action = std::string(method) + " " + std::string(route_pattern);
  entry.target = std::move(target);
  if (http_status < 400) {
    entry.outcome = "ok";
  } else {
    entry.outcome = (http_status == 401 || http_status == 403 ? "denied: " : "error: ") +
                    std::to_string(http_status);
  }
  return entry;
}

Result<AuditEntry> append_audit(Store& store, AuditEntry entry) {
  return store.append_audit(std::move(entry), audit_entry_hash);
}

Result<AuditVerification> verify_audit_chain(Store& store, const std::string& expected_head) {
  AuditVerification report;
  std::int64_t expected_sequence = 1;
  std::string previous_hash;
  bool saw_expected_head = expected_head.empty();
  Status scanned = store.scan_audit([&](const AuditEntry& entry) {
    ++report.entries;
    const std::string where = "entry " + std::to_string(entry.sequence) + ": ";
    if (entry.sequence != expected_sequence) {
      report.problems.push_back(where + "expected sequence " + std::to_string(expected_sequence) +
                                " (rows missing or reordered)");
    }
    if (entry.previous_hash != previous_hash) {
      report.problems.push_back(where +
                                "previous_hash does not match the prior entry's hash (a row "
                                "before it was deleted or edited)");
    }
    if (audit_entry_hash(entry) != entry.hash) {
      report.problems.push_back(where + "hash does not match its contents (row edited)");
    }
    if (!saw_expected_head && entry.hash == expected_head) saw_expected_head = true;
    expected_sequence = entry.sequence + 1;
    previous_hash = entry.hash;
    report.head_hash = entry.hash;
  });
  if (!scanned.is_ok()) return scanned;
  if (!saw_expected_head) {
    report.problems.push_back("the expected head hash " + expected_head +
                              " is not in the log (newest rows deleted)");
  }
  report.intact = report.problems.empty();
  return report;
}

}  // namespace fulcrum::api
