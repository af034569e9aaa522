// The key file for CLI commands (api/keyring.h): which file (--key-file, then
// FULCRUM_KEY_FILE, then "<sqlite file>.keys"), opened (and created on first use when
// `create`), with the store's migrations to it run (a legacy audit chain re-anchored, a
// store-kept token secret moved out). Errors are printed with the command's name.
#pragma once

#include <memory>
#include <string>

#include "api/audit.h"
#include "api/keyring.h"
#include "cli/command_registry.h"
#include "store/store.h"

namespace fulcrum::cli {

struct OpenedKeys {
  std::shared_ptr<api::Keyring> keyring;
  std::unique_ptr<api::AuditKey> audit_key;
  std::string checkpoint_file;  // default_checkpoint_file of the key file
  bool created = false;
};

// nullopt after printing why (to stderr, prefixed "fulcrum <command>: ").
std::optional<OpenedKeys> open_key_file(const GlobalOptions& global, Store& store,
                                        const Clock& clock, bool create,
                                        const std::string& command);

// Appends a CLI action to the keyed audit chain and checkpoints the new head; a failure is
// a warning on stderr (the action already happened).
void audit_cli_action(Store& store, const OpenedKeys& keys, const Clock& clock,
                      std::string action, std::string target, std::string outcome,
                      const std::string& command);

}  // namespace fulcrum::cli
