// `fulcrum audit verify`: walks the hash-chained audit log and reports any edited, deleted
// or reordered row (exit 1), or prints the entry count and head hash (exit 0). Recording the
// head hash elsewhere and passing it back with --expect-head also detects deleted newest rows.
#include <iostream>

#include "api/audit.h"
#include "cli/command_registry.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

CommandRunner setup_audit(CLI::App& app, const GlobalOptions& global) {
  app.description("Inspect the audit log");
  app.require_subcommand(1);
  auto expected_head = std::make_shared<std::string>();
  CLI::App* verify = app.add_subcommand("verify", "Verify the audit log's hash chain");
  verify->add_option("--expect-head", *expected_head,
                     "A head hash printed by an earlier verify; it must still be in the log");
  return [&global, expected_head, verify]() -> int {
    if (!verify->parsed()) return 2;
    auto store = open_store(global.store);
    if (!store.is_ok()) {
      std::cerr << "fulcrum audit verify: cannot open store " << global.store << ": "
                << store.status().to_string() << "\n";
      return 1;
    }
    auto report = api::verify_audit_chain(**store, *expected_head);
    if (!report.is_ok()) {
      std::cerr << "fulcrum audit verify: " << report.status().to_string() << "\n";
      return 1;
    }
    if (!report->intact) {
      std::cout << "audit log TAMPERED: " << report->problems.size() << " problem(s) in "
                << report->entries << " entries\n";
      for (const std::string& problem : report->problems) std::cout << "  " << problem << "\n";
      return 1;
    }
    std::cout << "audit log intact: " << report->entries << " entries, head "
              << (report->head_hash.empty() ? "(empty)" : report->head_hash) << "\n";
    return 0;
  };
}

const CommandRegistration kAudit("audit", setup_audit);

}  // namespace
}  // namespace fulcrum::cli
