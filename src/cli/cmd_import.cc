// `fulcrum import FILE`: loads NDJSON or CSV events into the store, chunk by chunk.
//
// Strict by default (docs/ingestion.md): the whole file is decoded once to validate it and
// nothing is stored when any record is bad; then it is decoded again and each chunk is
// stored in one transaction. --skip-invalid stores the valid records in a single pass and
// reports the bad lines.
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/command_registry.h"
#include "store/event_codec.h"
#include "store/store.h"

namespace fulcrum::cli {
namespace {

struct ImportOptions {
  std::string file;
  std::string format;  // empty: from the file extension
  bool skip_invalid = false;
  std::size_t chunk_records = EventReader::kDefaultRecordsPerChunk;
};

constexpr std::size_t kErrorsShown = 20;

struct Counts {
  std::int64_t records = 0, invalid = 0, stored = 0, duplicates = 0, chunks = 0;
  std::int64_t users = 0, features = 0, feature_usage = 0, sessions = 0, subscription_changes = 0,
               payments = 0, paywall_hits = 0, exposures = 0, metric_events = 0;

  void add(const EventBatch& batch) {
    users += static_cast<std::int64_t>(batch.users.size());
    features += static_cast<std::int64_t>(batch.features.size());
    feature_usage += static_cast<std::int64_t>(batch.feature_usage.size());
    sessions += static_cast<std::int64_t>(batch.sessions.size());
    subscription_changes += static_cast<std::int64_t>(batch.subscription_changes.size());
    payments += static_cast<std::int64_t>(batch.payments.size());
    paywall_hits += static_cast<std::int64_t>(batch.paywall_hits.size());
    exposures += static_cast<std::int64_t>(batch.exposures.size());
    metric_events += static_cast<std::int64_t>(batch.metric_events.size());
  }
};

void print_errors(const DecodedChunk& chunk, std::size_t& shown) {
  for (const RecordError& error : chunk.errors) {
    if (shown >= kErrorsShown) return;
    std::cerr << "  " << error.to_string() << "\n";
    ++shown;
  }
}

int run_import(const ImportOptions& options, const GlobalOptions& global) {
  EventFormat format = event_format_from_path(options.file);
  if (!options.format.empty()) {
    auto parsed = parse_event_format(options.format);
    if (!parsed) {
      std::cerr << "fulcrum import: --format must be ndjson or csv, got '" << options.format
                << "'\n";
      return 2;
    }
    format = *parsed;
  }
  auto open_input = [&]() -> std::unique_ptr<std::ifstream> {
    auto in = std::make_unique<std::ifstream>(options.file, std::ios::binary);
    if (!*in) return nullptr;
    return in;
  };
  const auto started = std::chrono::steady_clock::now();
  // Times must be plausible (2000-01-01 to a day from now), as over HTTP.
  const DecodeOptions import_options = DecodeOptions::plausible_times(SystemClock().now());

  // Strict mode, pass 1: validate everything before storing anything.
  if (!options.skip_invalid) {
    auto in = open_input();
    if (!in) {
      std::cerr << "fulcrum import: cannot open " << options.file << "\n";
      return 1;
    }
    EventReader reader(*in, format, options.chunk_records, import_options);
    DecodedChunk chunk;
    std::int64_t invalid = 0;
    std::size_t shown = 0;
    while (true) {
      auto more = reader.next(chunk);
      if (!more.is_ok()) {
        std::cerr << "fulcrum import: " << options.file << ": " << more.status().message()
                  << "\nnothing was stored\n";
        return 1;
      }
      if (!*more) break;
      if (!chunk.ok() && invalid == 0) std::cerr << "fulcrum import: invalid records:\n";
      print_errors(chunk, shown);
      invalid += chunk.invalid_records;
    }
    if (invalid > 0) {
      if (invalid > static_cast<std::int64_t>(shown)) {
        std::cerr << "  ... and " << invalid - static_cast<std::int64_t>(shown) << " more\n";
      }
      std::cerr << invalid << " invalid record(s) in " << options.file
                << "; nothing was stored (fix them, or use --skip-invalid to store the valid "
                   "records)\n";
      return 1;
    }
  }

  auto store = open_store(global.store);
  if (!store.is_ok()) {
    std::cerr << "fulcrum import: cannot open store " << global.store << ": "
              << store.status().message() << "\n";
    return 1;
  }
  auto in = open_input();
  if (!in) {
    std::cerr << "fulcrum import: cannot open " << options.file << "\n";
    return 1;
  }
  EventReader reader(*in, format, options.chunk_records, import_options);
  DecodedChunk chunk;
  Counts counts;
  std::size_t shown = 0;
  const InvalidRecordPolicy policy =
      options.skip_invalid ? InvalidRecordPolicy::kSkipInvalid : InvalidRecordPolicy::kRejectChunk;
  while (true) {
    auto more = reader.next(chunk);
    if (!more.is_ok()) {
      std::cerr << "fulcrum import: " << options.file << ": " << more.status().message() << "\n";
      break;
    }
    if (!*more) break;
    if (!chunk.ok() && counts.invalid == 0) std::cerr << "fulcrum import: skipped records:\n";
    print_errors(chunk, shown);
    auto stored = ingest_chunk(**store, chunk, policy);
    if (!stored.is_ok()) {
      // Only a store failure (or a file changed since validation) gets here.
      std::cerr << "fulcrum import: " << stored.status().message() << "\n"
                << "stored " << counts.stored << " records in " << counts.chunks
                << " complete chunk(s) before the failure (lines 1-" << chunk.first_line - 1
                << ")\n";
      return 1;
    }
    ++counts.chunks;
    counts.records += chunk.records;
    counts.invalid += chunk.invalid_records;
    counts.stored += stored->stored;
    counts.duplicates += stored->duplicates;
    counts.add(chunk.batch);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (counts.invalid > static_cast<std::int64_t>(shown)) {
    std::cerr << "  ... and " << counts.invalid - static_cast<std::int64_t>(shown) << " more\n";
  }
  std::cout << "imported " << counts.stored << " of " << counts.records << " records from "
            << options.file << " in " << counts.chunks << " chunk(s), " << seconds << " s\n"
            << "  users " << counts.users << ", features " << counts.features << ", feature_usage "
            << counts.feature_usage << ", sessions " << counts.sessions << ", subscription_changes "
            << counts.subscription_changes << ", payments " << counts.payments << ", paywall_hits "
            << counts.paywall_hits << ", exposures " << counts.exposures << ", metric_events "
            << counts.metric_events << "\n";
  if (counts.duplicates > 0) {
    std::cout << "  left out " << counts.duplicates
              << " duplicate(s): their event_id was already stored\n";
  }
  if (counts.invalid > 0) std::cout << "  skipped " << counts.invalid << " invalid record(s)\n";
  return 0;
}

CommandRunner setup_import(CLI::App& app, const GlobalOptions& global) {
  app.description(
      "Import events from an NDJSON or CSV file (see docs/ingestion.md). Strict by default: "
      "nothing is stored when any record is invalid.");
  auto options = std::make_shared<ImportOptions>();
  app.add_option("file", options->file, "NDJSON (.ndjson/.jsonl) or CSV (.csv) file")->required();
  app.add_option("--format", options->format, "ndjson or csv (default: from the extension)");
  app.add_flag("--skip-invalid", options->skip_invalid,
               "store the valid records and report the invalid ones");
  app.add_option("--chunk-records", options->chunk_records,
                 "records per transaction (default 100000)")
      ->check(CLI::PositiveNumber);
  return [options, &global]() { return run_import(*options, global); };
}

const CommandRegistration kImport("import", setup_import);

}  // namespace
}  // namespace fulcrum::cli
