// What the automation layer (src/automation) persists: the document change feed (the
// transactional outbox), job leases and runs, and webhook deliveries. Plain rows; the
// meaning of their fields lives in src/automation.
#pragma once

#include <cstdint>
#include <string>

#include "core/time.h"

namespace fulcrum {

// One row of the change feed: every put_document / put_document_and_members appends one in
// the same transaction as the document, so "the change happened" and "someone must be told"
// commit together (a transactional outbox). Rows stay pending until the webhook fan-out has
// turned them into deliveries (Store::fan_out_document_changes).
struct DocumentChange {
  std::int64_t sequence = 0;  // assigned by the store, increasing
  std::string kind;
  std::string id;
  std::int64_t version = 0;      // the document's version after the write
  std::string status;            // after the write
  std::string previous_status;   // before ("" for a new document)
  std::string body;              // the document body after the write
  UnixSeconds at = 0;            // the document's updated_at
};

// Who runs one job for one period ("retention_triggers" / "2026-12-02T03:00:00Z").
enum class JobLeaseOutcome {
  kAcquired,       // the caller holds the lease until its expiry and must run the job
  kHeldByOther,    // another runner holds an unexpired lease
  kAlreadyDone,    // the period's run finished (successfully or not): nothing to do
};

struct JobRun {
  std::int64_t run_id = 0;  // assigned by the store
  std::string job;
  std::string period;
  std::string runner;            // holder id of the process that ran it
  UnixSeconds started_at = 0;
  UnixSeconds finished_at = 0;   // 0 while running
  double duration_seconds = 0;
  std::string outcome;           // "running", "ok", "failed", "timed_out", "abandoned"
  std::string detail;            // JSON text: what the job did or why it failed
};

// One HTTP delivery of one event to one endpoint.
struct WebhookDelivery {
  std::string delivery_id;  // also the idempotency id the receiver de-duplicates on
  std::string endpoint_id;
  std::string event_type;
  std::string event_id;     // "<change sequence>" (+ ".<page>" for paged events)
  std::string payload;      // the JSON body sent
  std::string status;       // "pending", "delivered", "dead"
  int attempts = 0;
  UnixSeconds next_attempt_at = 0;
  UnixSeconds claimed_until = 0;  // a sender holds it until then (0: free)
  int last_status_code = 0;       // HTTP status of the last attempt (0: no answer)
  std::string last_error;
  UnixSeconds created_at = 0;
  UnixSeconds delivered_at = 0;
};

struct WebhookDeliveryFilter {
  std::string endpoint_id;  // empty: every endpoint
  std::string status;       // empty: every status
  std::size_t limit = 100;
};

}  // namespace fulcrum
