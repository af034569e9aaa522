// `fulcrum audit verify`: walks the keyed audit chain (HMAC-SHA256 under the key file's
// audit key) and checks every signed checkpoint of the checkpoint file against it; reports
// each entry or checkpoint that fails (exit 1: edited, forged, deleted or truncated), or
// prints the entry count and head hash (exit 0). `fulcrum audit checkpoint` appends a
// signed checkpoint of the current head to the checkpoint file (the server does so every
// minute). Neither creates a key file: without the original one nothing can be verified.
#include <iostream>

#include "api/audit.h"
#include "cli/command_registry.h"
#include "cli/key_file.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

CommandRunner setup_audit(CLI::App& app, const GlobalOptions& global) {
  app.description("Verify and anchor the audit log");
  app.require_subcommand(1);
  struct Args {
    std::string expected_head, checkpoints;
    bool no_checkpoints = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* verify = app.add_subcommand("verify", "Verify the audit chain and its checkpoints");
  verify->add_option("--expect-head", args->expected_head,
                     "A head hash recorded earlier (e.g. from GET /audit/head); it must still be "
                     "in the log");
  verify->add_option("--checkpoints", args->checkpoints,
                     "Checkpoint file (default: next to the key file, <name>.audit-checkpoints)");
  verify->add_flag("--no-checkpoints", args->no_checkpoints,
                   "Verify the chain only (truncation then goes unnoticed)");
  CLI::App* checkpoint = app.add_subcommand("checkpoint", "Append a signed checkpoint of the head");
  checkpoint->add_option("--checkpoints", args->checkpoints, "Checkpoint file (default as above)");
  return [&global, args, verify, checkpoint]() -> int {
    const std::string name = verify->parsed() ? "audit verify" : "audit checkpoint";
    auto store = open_store(global.store);
    if (!store.is_ok()) {
      std::cerr << "fulcrum " << name << ": cannot open store " << global.store << ": "
                << store.status().to_string() << "\n";
      return 1;
    }
    SystemClock clock;
    auto keys = open_key_file(global, **store, clock, /*create=*/false, name);
    if (!keys) return 1;
    const std::string checkpoint_file =
        args->checkpoints.empty() ? keys->checkpoint_file : args->checkpoints;
    if (checkpoint->parsed()) {
      auto made = api::checkpoint_head(**store, *keys->audit_key, clock);
      Status written = made.is_ok() ? api::append_checkpoint_file(checkpoint_file, *made)
                                    : made.status();
      if (!written.is_ok()) {
        std::cerr << "fulcrum audit checkpoint: " << written.to_string() << "\n";
        return 1;
      }
      std::cout << made->to_json_line() << "\n";
      return 0;
    }
    if (!verify->parsed()) return 2;
    std::vector<api::CheckpointLine> checkpoints;
    if (!args->no_checkpoints) {
      auto read = api::read_checkpoint_file(checkpoint_file);
      if (read.is_ok()) {
        checkpoints = std::move(*read);
      } else if (read.status().code() != StatusCode::kNotFound || !args->checkpoints.empty()) {
        std::cerr << "fulcrum audit verify: " << read.status().to_string() << "\n";
        return 1;
      } else {
        std::cerr << "fulcrum audit verify: warning: no checkpoint file at " << checkpoint_file
                  << ": deleted newest entries cannot be detected\n";
      }
    }
    auto report = api::verify_audit_chain(**store, *keys->audit_key, checkpoints,
                                          args->expected_head);
    if (!report.is_ok()) {
      std::cerr << "fulcrum audit verify: " << report.status().to_string() << "\n";
      return 1;
    }
    if (!report->intact) {
      std::cout << "audit log TAMPERED: " << report->problems.size() << " problem(s) in "
                << report->entries << " entries and " << report->checkpoints
                << " checkpoints\n";
      for (const std::string& problem : report->problems) std::cout << "  " << problem << "\n";
      return 1;
    }
    std::cout << "audit log intact: " << report->entries << " entries";
    if (report->legacy_entries > 0) {
      std::cout << " (" << report->legacy_entries << " from before the key file, re-anchored)";
    }
    std::cout << ", " << report->checkpoints << " checkpoints, head "
              << (report->head_hash.empty() ? "(empty)" : report->head_hash) << "\n";
    return 0;
  };
}

const CommandRegistration kAudit("audit", setup_audit);

}  // namespace
}  // namespace fulcrum::cli
