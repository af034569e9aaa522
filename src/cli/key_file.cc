#include "cli/key_file.h"

#include <iostream>
#include <vector>

namespace fulcrum::cli {

std::optional<OpenedKeys> open_key_file(const GlobalOptions& global, Store& store,
                                        const Clock& clock, bool create,
                                        const std::string& command) {
  auto path = api::resolve_key_file(global.key_file, global.store);
  if (!path.is_ok()) {
    std::cerr << "fulcrum " << command << ": " << path.status().message() << "\n";
    return std::nullopt;
  }
  OpenedKeys opened;
  auto keyring = api::Keyring::open(*path, clock, create, &opened.created);
  if (!keyring.is_ok()) {
    std::cerr << "fulcrum " << command << ": " << keyring.status().message() << "\n";
    return std::nullopt;
  }
  opened.keyring = std::move(*keyring);
  if (opened.created) {
    std::cerr << "fulcrum " << command << ": created the key file " << *path
              << " (mode 0600; back it up apart from the database: without it user tokens "
                 "and the audit log cannot be verified)\n";
  }
  if (create) {
    std::vector<std::string> notes;
    Status migrated = api::migrate_store_to_key_file(store, *opened.keyring, clock, &notes);
    if (!migrated.is_ok()) {
      std::cerr << "fulcrum " << command << ": migration to the key file failed: "
                << migrated.to_string() << "\n";
      return std::nullopt;
    }
    for (const std::string& note : notes) std::cerr << "fulcrum " << command << ": " << note << "\n";
  }
  opened.audit_key = std::make_unique<api::AuditKey>(opened.keyring->keys()->audit_secret);
  opened.checkpoint_file = api::default_checkpoint_file(*path);
  return opened;
}

void audit_cli_action(Store& store, const OpenedKeys& keys, const Clock& clock,
                      std::string action, std::string target, std::string outcome,
                      const std::string& command) {
  AuditEntry entry;
  entry.at = clock.now();
  entry.actor = "cli";
  entry.action = std::move(action);
  entry.target = std::move(target);
  entry.outcome = std::move(outcome);
  auto appended = api::append_audit(store, *keys.audit_key, std::move(entry));
  if (!appended.is_ok()) {
    std::cerr << "fulcrum " << command << ": warning: audit append failed: "
              << appended.status().to_string() << "\n";
    return;
  }
  Status checkpointed = api::write_checkpoint(store, *keys.audit_key, clock, keys.checkpoint_file);
  if (!checkpointed.is_ok()) {
    std::cerr << "fulcrum " << command << ": warning: " << checkpointed.to_string() << "\n";
  }
}

}  // namespace fulcrum::cli
