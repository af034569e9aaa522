#include "api/audit.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "api/server.h"
#include "core/ids.h"

namespace fulcrum::api {

namespace {

constexpr std::string_view kCheckpointFormat = "fulcrum-audit-checkpoint/1";

void append_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
  out += '|';
}

std::string hash_input(const AuditEntry& entry) {
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
  return input;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()),
                              key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(message.data()),
                                message.size());
  crypto_auth_hmacsha256_final(&state, mac);
  return std::string(reinterpret_cast<const char*>(mac), sizeof mac);
}

std::optional<std::string> from_hex(std::string_view hex) {
  std::string out(hex.size() / 2 + 1, '\0');
  std::size_t length = 0;
  if (hex.size() % 2 != 0 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &length, nullptr) != 0) {
    return std::nullopt;
  }
  out.resize(length);
  return out;
}

}  // namespace

std::string AuditCheckpoint::signed_text() const {
  return std::string(kCheckpointFormat) + "|" + std::to_string(sequence) + "|" + hash + "|" +
         std::to_string(at);
}

std::string AuditCheckpoint::to_json_line() const {
  return nlohmann::json{{"format", kCheckpointFormat},
                        {"sequence", sequence},
                        {"hash", hash},
                        {"at", at},
                        {"time", format_iso8601(at)},
                        {"key_id", key_id},
                        {"signature", signature}}
      .dump();
}

AuditKey::AuditKey(const std::string& secret) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  if (secret.size() != 32) throw std::invalid_argument("audit key must be 32 bytes");
  // Two keys from one secret, separated by purpose (HMAC as a PRF, RFC 2104).
  mac_key_ = hmac_sha256(secret, "fulcrum audit chain v1");
  const std::string seed = hmac_sha256(secret, "fulcrum audit checkpoint signing v1");
  public_key_.assign(crypto_sign_PUBLICKEYBYTES, '\0');
  signing_key_.assign(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(public_key_.data()),
                           reinterpret_cast<unsigned char*>(signing_key_.data()),
                           reinterpret_cast<const unsigned char*>(seed.data()));
  key_id_ = sha256_hex(public_key_).substr(0, 16);
}

std::string AuditKey::entry_hash(const AuditEntry& entry) const {
  return to_hex(hmac_sha256(mac_key_, hash_input(entry)));
}

std::function<std::string(const AuditEntry&)> AuditKey::hasher() const {
  return [key = *this](const AuditEntry& entry) { return key.entry_hash(entry); };
}

AuditCheckpoint AuditKey::checkpoint(std::int64_t sequence, std::string hash,
                                     UnixSeconds at) const {
  AuditCheckpoint checkpoint;
  checkpoint.sequence = sequence;
  checkpoint.hash = std::move(hash);
  checkpoint.at = at;
  checkpoint.key_id = key_id_;
  const std::string text = checkpoint.signed_text();
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), reinterpret_cast<const unsigned char*>(signing_key_.data()));
  checkpoint.signature =
      to_hex(std::string_view(reinterpret_cast<const char*>(signature), sizeof signature));
  return checkpoint;
}

bool AuditKey::signature_valid(const AuditCheckpoint& checkpoint) const {
  std::optional<std::string> signature = from_hex(checkpoint.signature);
  if (!signature || signature->size() != crypto_sign_BYTES) return false;
  const std::string text = checkpoint.signed_text();
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature->data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     text.size(),
                                     reinterpret_cast<const unsigned char*>(public_key_.data())) == 0;
}

std::string AuditKey::public_key_hex() const { return to_hex(public_key_); }

std::string plain_audit_entry_hash(const AuditEntry& entry) {
  return sha256_hex(hash_input(entry));
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

Result<AuditEntry> append_audit(Store& store, const AuditKey& key, AuditEntry entry) {
  return store.append_audit(std::move(entry), key.hasher());
}

Result<bool> reanchor_legacy_chain(Store& store, const AuditKey& key, const Clock& clock) {
  auto head = store.audit_head();
  if (!head.is_ok()) return head.status();
  if (!*head) return false;
  const AuditEntry& last = **head;
  if (key.entry_hash(last) == last.hash) return false;       // already keyed
  if (plain_audit_entry_hash(last) != last.hash) return false;  // not a legacy head: verify says
  AuditEntry entry;
  entry.at = clock.now();
  entry.actor = "system";
  entry.action = std::string(kReanchorAction);
  entry.target = "entries 1.." + std::to_string(last.sequence);
  entry.outcome = "ok; plain SHA-256 chain up to here, keyed HMAC-SHA256 from here on";
  auto appended = append_audit(store, key, std::move(entry));
  if (!appended.is_ok()) return appended.status();
  return true;
}

Result<AuditCheckpoint> checkpoint_head(Store& store, const AuditKey& key, const Clock& clock) {
  auto head = store.audit_head();
  if (!head.is_ok()) return head.status();
  if (!*head) return key.checkpoint(0, "", clock.now());
  return key.checkpoint((*head)->sequence, (*head)->hash, clock.now());
}

Status append_checkpoint_file(const std::string& path, const AuditCheckpoint& checkpoint) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status(StatusCode::kUnavailable,
                  "cannot open checkpoint file " + path + ": " + std::strerror(errno));
  }
  const std::string line = checkpoint.to_json_line() + "\n";
  // One write of a short line with O_APPEND: concurrent writers (replicas) never interleave.
  const ssize_t written = ::write(fd, line.data(), line.size());
  const bool ok = written == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  const std::string why = std::strerror(errno);
  ::close(fd);
  if (!ok) return Status(StatusCode::kUnavailable, "cannot append to " + path + ": " + why);
  return Status::ok();
}

Status write_checkpoint(Store& store, const AuditKey& key, const Clock& clock,
                        const std::string& path) {
  if (path.empty()) return Status::ok();
  auto checkpoint = checkpoint_head(store, key, clock);
  if (!checkpoint.is_ok()) return checkpoint.status();
  return append_checkpoint_file(path, *checkpoint);
}

Result<std::vector<CheckpointLine>> read_checkpoint_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("no checkpoint file at " + path);
  std::vector<CheckpointLine> lines;
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (text.empty()) continue;
    CheckpointLine line;
    line.line = number;
    auto parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_object() && parsed.value("format", "") == kCheckpointFormat &&
        parsed.contains("sequence") && parsed["sequence"].is_number_integer() &&
        parsed.contains("hash") && parsed["hash"].is_string() && parsed.contains("at") &&
        parsed["at"].is_number_integer() && parsed.contains("signature") &&
        parsed["signature"].is_string()) {
      AuditCheckpoint checkpoint;
      checkpoint.sequence = parsed["sequence"].get<std::int64_t>();
      checkpoint.hash = parsed["hash"].get<std::string>();
      checkpoint.at = parsed["at"].get<UnixSeconds>();
      checkpoint.key_id = parsed.value("key_id", "");
      checkpoint.signature = parsed["signature"].get<std::string>();
      line.checkpoint = std::move(checkpoint);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

Result<AuditVerification> verify_audit_chain(Store& store, const AuditKey& key,
                                             const std::vector<CheckpointLine>& checkpoints,
                                             const std::string& expected_head) {
  AuditVerification report;
  // Checkpoints first: the entries they name are compared during the one scan.
  std::map<std::int64_t, std::vector<const CheckpointLine*>> wanted;
  std::int64_t newest_checkpointed = 0;
  for (const CheckpointLine& line : checkpoints) {
    ++report.checkpoints;
    const std::string where = "checkpoint line " + std::to_string(line.line) + ": ";
    if (!line.checkpoint) {
      report.problems.push_back(where + "not a checkpoint (damaged line)");
      continue;
    }
    if (!key.signature_valid(*line.checkpoint)) {
      report.problems.push_back(where + "signature is invalid (forged or edited checkpoint)");
      continue;
    }
    if (line.checkpoint->sequence > 0) wanted[line.checkpoint->sequence].push_back(&line);
    newest_checkpointed = std::max(newest_checkpointed, line.checkpoint->sequence);
  }

  std::int64_t expected_sequence = 1;
  std::string previous_hash;
  bool keyed = false;  // set at the first entry with a valid keyed hash
  bool saw_expected_head = expected_head.empty();
  std::vector<std::int64_t> seen_checkpointed;
  Status scanned = store.scan_audit([&](const AuditEntry& entry) {
    ++report.entries;
    const std::string where = "entry " + std::to_string(entry.sequence) + " (" + entry.action +
                              " by " + entry.actor + "): ";
    if (entry.sequence != expected_sequence) {
      report.problems.push_back(where + "expected sequence " + std::to_string(expected_sequence) +
                                " (rows missing or reordered)");
    }
    if (entry.previous_hash != previous_hash) {
      report.problems.push_back(where +
                                "previous_hash does not match the prior entry's hash (a row "
                                "before it was deleted or edited)");
    }
    const bool keyed_ok = key.entry_hash(entry) == entry.hash;
    // Only the key holder can write an entry with a valid keyed hash, and each one pins
    // everything before it (previous_hash is covered), so the first such entry starts the
    // keyed part; before it only a legacy plain chain can be valid.
    if (!keyed && keyed_ok) keyed = true;
    if (keyed) {
      if (!keyed_ok) {
        report.problems.push_back(where +
                                  "hash is not the keyed hash of its contents (row edited, or "
                                  "written without the audit key)");
      }
    } else {
      ++report.legacy_entries;
      if (plain_audit_entry_hash(entry) != entry.hash) {
        report.problems.push_back(where + "hash does not match its contents (row edited)");
      }
    }
    if (auto it = wanted.find(entry.sequence); it != wanted.end()) {
      seen_checkpointed.push_back(entry.sequence);
      for (const CheckpointLine* line : it->second) {
        if (line->checkpoint->hash != entry.hash) {
          report.problems.push_back(where + "differs from checkpoint line " +
                                    std::to_string(line->line) + " of " +
                                    format_iso8601(line->checkpoint->at) +
                                    " (the log was rewritten after it)");
        }
      }
    }
    if (!saw_expected_head && entry.hash == expected_head) saw_expected_head = true;
    expected_sequence = entry.sequence + 1;
    previous_hash = entry.hash;
    report.head_hash = entry.hash;
  });
  if (!scanned.is_ok()) return scanned;
  if (report.entries > 0 && !keyed) {
    report.problems.push_back(
        "no entry is keyed by this audit key: entries 1.." + std::to_string(report.entries) +
        " are not anchored (a store from before the key file that no server or CLI has "
        "re-anchored yet, a rewritten log, or the wrong key file)");
  }
  const std::int64_t last_sequence = expected_sequence - 1;
  if (newest_checkpointed > last_sequence) {
    report.problems.push_back("the log ends at entry " + std::to_string(last_sequence) +
                              " but a checkpoint covers entry " +
                              std::to_string(newest_checkpointed) +
                              " (newest rows or the whole log deleted)");
  }
  for (const auto& [sequence, lines] : wanted) {
    if (sequence > last_sequence) continue;  // reported above
    if (std::find(seen_checkpointed.begin(), seen_checkpointed.end(), sequence) ==
        seen_checkpointed.end()) {
      report.problems.push_back("entry " + std::to_string(sequence) + " named by checkpoint line " +
                                std::to_string(lines.front()->line) + " is missing (deleted)");
    }
  }
  if (!saw_expected_head) {
    report.problems.push_back("the expected head hash " + expected_head +
                              " is not in the log (newest rows deleted)");
  }
  report.intact = report.problems.empty();
  return report;
}

}  // namespace fulcrum::api
