// SqliteStore's automation tables (store/automation.h): the change feed, job leases and
// runs, webhook deliveries. One server process owns a SQLite file, so the leases only guard
// against the CLI (`fulcrum jobs run`) running a job beside the server.
#include <sqlite3.h>

#include "store/sqlite/sqlite_statement.h"
#include "store/sqlite/sqlite_store.h"

namespace fulcrum {

namespace {

using sqlite::Statement;
using sqlite::Transaction;

constexpr char kDeliveryColumns[] =
    "SELECT delivery_id,endpoint_id,event_type,event_id,payload,status,attempts,"
    "next_attempt_at,claimed_until,last_status_code,last_error,created_at,delivered_at "
    "FROM webhook_deliveries";

WebhookDelivery read_delivery(const Statement& row) {
  WebhookDelivery d;
  d.delivery_id = row.text(0);
  d.endpoint_id = row.text(1);
  d.event_type = row.text(2);
  d.event_id = row.text(3);
  d.payload = row.text(4);
  d.status = row.text(5);
  d.attempts = static_cast<int>(row.int64(6));
  d.next_attempt_at = row.int64(7);
  d.claimed_until = row.int64(8);
  d.last_status_code = static_cast<int>(row.int64(9));
  d.last_error = row.text(10);
  d.created_at = row.int64(11);
  d.delivered_at = row.int64(12);
  return d;
}

constexpr char kRunColumns[] =
    "SELECT run_id,job,period,runner,started_at,finished_at,duration_seconds,outcome,detail "
    "FROM job_runs";

JobRun read_run(const Statement& row) {
  JobRun run;
  run.run_id = row.int64(0);
  run.job = row.text(1);
  run.period = row.text(2);
  run.runner = row.text(3);
  run.started_at = row.int64(4);
  run.finished_at = row.int64(5);
  run.duration_seconds = row.real(6);
  run.outcome = row.text(7);
  run.detail = row.text(8);
  return run;
}

}  // namespace

Result<std::vector<DocumentChange>> SqliteStore::pending_document_changes(std::size_t limit) {
  FULCRUM_WITH_READER(reader);
  Statement query(reader.db(),
                  "SELECT sequence,kind,id,version,status,previous_status,body,at "
                  "FROM document_changes WHERE fanned_out=0 ORDER BY sequence LIMIT ?1");
  query.bind(1, static_cast<std::int64_t>(limit));
  std::vector<DocumentChange> changes;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
    changes.push_back(DocumentChange{row.int64(0), row.text(1), row.text(2), row.int64(3),
                                     row.text(4), row.text(5), row.text(6), row.int64(7)});
  }));
  return changes;
}

Result<std::int64_t> SqliteStore::prune_document_changes(UnixSeconds before,
                                                         std::size_t limit) {
  std::lock_guard lock(write_mutex_);
  Statement prune(writer_,
                  "DELETE FROM document_changes WHERE sequence IN (SELECT sequence FROM "
                  "document_changes WHERE fanned_out=1 AND at<?1 ORDER BY sequence LIMIT ?2)");
  FULCRUM_RETURN_IF_ERROR(prune.status());
  FULCRUM_RETURN_IF_ERROR(prune.bind(1, before).bind(2, static_cast<std::int64_t>(limit)).run());
  return static_cast<std::int64_t>(sqlite3_changes(writer_));
}

Status SqliteStore::fan_out_document_changes(const std::vector<std::int64_t>& sequences,
                                             const std::vector<WebhookDelivery>& deliveries) {
  std::lock_guard lock(write_mutex_);
  Transaction transaction(writer_);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  Statement insert(writer_,
                   "INSERT OR IGNORE INTO webhook_deliveries(delivery_id,endpoint_id,event_type,"
                   "event_id,payload,status,attempts,next_attempt_at,claimed_until,"
                   "last_status_code,last_error,created_at,delivered_at) "
                   "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)");
  FULCRUM_RETURN_IF_ERROR(insert.status());
  for (const WebhookDelivery& d : deliveries) {
    FULCRUM_RETURN_IF_ERROR(insert.bind(1, d.delivery_id)
                                .bind(2, d.endpoint_id)
                                .bind(3, d.event_type)
                                .bind(4, d.event_id)
                                .bind(5, d.payload)
                                .bind(6, d.status)
                                .bind(7, static_cast<std::int64_t>(d.attempts))
                                .bind(8, d.next_attempt_at)
                                .bind(9, d.claimed_until)
                                .bind(10, static_cast<std::int64_t>(d.last_status_code))
                                .bind(11, d.last_error)
                                .bind(12, d.created_at)
                                .bind(13, d.delivered_at)
                                .run());
  }
  Statement mark(writer_, "UPDATE document_changes SET fanned_out=1 WHERE sequence=?1");
  for (std::int64_t sequence : sequences) {
    FULCRUM_RETURN_IF_ERROR(mark.bind(1, sequence).run());
  }
  return transaction.commit();
}

Result<JobLeaseOutcome> SqliteStore::acquire_job_lease(const std::string& job,
                                                       const std::string& period,
                                                       const std::string& holder,
                                                       UnixSeconds now, UnixSeconds expires_at) {
  std::lock_guard lock(write_mutex_);
  Transaction transaction(writer_);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  std::optional<JobLeaseOutcome> outcome;
  {
    Statement query(writer_,
                    "SELECT holder,expires_at,done FROM job_leases WHERE job=?1 AND period=?2");
    query.bind(1, job).bind(2, period);
    FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) {
      if (row.int64(2) != 0) {
        outcome = JobLeaseOutcome::kAlreadyDone;
      } else if (row.text(0) != holder && row.int64(1) > now) {
        outcome = JobLeaseOutcome::kHeldByOther;
      }
    }));
  }
  if (outcome) return *outcome;
  Statement write(writer_,
                  "INSERT INTO job_leases(job,period,holder,expires_at,done) VALUES(?1,?2,?3,?4,0) "
                  "ON CONFLICT(job,period) DO UPDATE SET holder=excluded.holder, "
                  "expires_at=excluded.expires_at");
  FULCRUM_RETURN_IF_ERROR(write.bind(1, job).bind(2, period).bind(3, holder).bind(4, expires_at).run());
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return JobLeaseOutcome::kAcquired;
}

Status SqliteStore::finish_job_lease(const std::string& job, const std::string& period,
                                     const std::string& holder, bool done) {
  std::lock_guard lock(write_mutex_);
  Statement write(writer_, done ? "UPDATE job_leases SET done=1 WHERE job=?1 AND period=?2 AND "
                                  "holder=?3 AND done=0"
                                : "DELETE FROM job_leases WHERE job=?1 AND period=?2 AND "
                                  "holder=?3 AND done=0");
  FULCRUM_RETURN_IF_ERROR(write.bind(1, job).bind(2, period).bind(3, holder).run());
  if (sqlite3_changes(writer_) == 0) {
    return failed_precondition("the lease of " + job + " " + period + " is no longer held by " +
                               holder);
  }
  return Status::ok();
}

Result<std::int64_t> SqliteStore::put_job_run(const JobRun& run) {
  std::lock_guard lock(write_mutex_);
  if (run.run_id == 0) {
    Statement insert(writer_,
                     "INSERT INTO job_runs(job,period,runner,started_at,finished_at,"
                     "duration_seconds,outcome,detail) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
    FULCRUM_RETURN_IF_ERROR(insert.bind(1, run.job)
                                .bind(2, run.period)
                                .bind(3, run.runner)
                                .bind(4, run.started_at)
                                .bind(5, run.finished_at)
                                .bind(6, run.duration_seconds)
                                .bind(7, run.outcome)
                                .bind(8, run.detail)
                                .run());
    return static_cast<std::int64_t>(sqlite3_last_insert_rowid(writer_));
  }
  Statement update(writer_,
                   "UPDATE job_runs SET finished_at=?2, duration_seconds=?3, outcome=?4, "
                   "detail=?5 WHERE run_id=?1");
  FULCRUM_RETURN_IF_ERROR(update.bind(1, run.run_id)
                              .bind(2, run.finished_at)
                              .bind(3, run.duration_seconds)
                              .bind(4, run.outcome)
                              .bind(5, run.detail)
                              .run());
  return run.run_id;
}

Result<std::vector<JobRun>> SqliteStore::list_job_runs(const std::string& job,
                                                       std::size_t limit) {
  FULCRUM_WITH_READER(reader);
  const std::string sql = std::string(kRunColumns) +
                          (job.empty() ? " WHERE ?1=''" : " WHERE job=?1") +
                          " ORDER BY run_id DESC LIMIT ?2";
  Statement query(reader.db(), sql.c_str());
  query.bind(1, job).bind(2, static_cast<std::int64_t>(limit));
  std::vector<JobRun> runs;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { runs.push_back(read_run(row)); }));
  return runs;
}

Result<std::vector<WebhookDelivery>> SqliteStore::claim_webhook_deliveries(
    UnixSeconds now, UnixSeconds claim_until, std::size_t limit) {
  std::lock_guard lock(write_mutex_);
  Transaction transaction(writer_);
  FULCRUM_RETURN_IF_ERROR(transaction.status());
  std::vector<WebhookDelivery> due;
  {
    const std::string sql = std::string(kDeliveryColumns) +
                            " WHERE status='pending' AND next_attempt_at<=?1 AND "
                            "claimed_until<=?1 ORDER BY next_attempt_at, delivery_id LIMIT ?2";
    Statement query(writer_, sql.c_str());
    query.bind(1, now).bind(2, static_cast<std::int64_t>(limit));
    FULCRUM_RETURN_IF_ERROR(
        query.each_row([&](const Statement& row) { due.push_back(read_delivery(row)); }));
  }
  Statement claim(writer_, "UPDATE webhook_deliveries SET claimed_until=?2 WHERE delivery_id=?1");
  for (WebhookDelivery& d : due) {
    FULCRUM_RETURN_IF_ERROR(claim.bind(1, d.delivery_id).bind(2, claim_until).run());
    d.claimed_until = claim_until;
  }
  FULCRUM_RETURN_IF_ERROR(transaction.commit());
  return due;
}

Status SqliteStore::update_webhook_delivery(const WebhookDelivery& d) {
  std::lock_guard lock(write_mutex_);
  Statement update(writer_,
                   "UPDATE webhook_deliveries SET status=?2, attempts=?3, next_attempt_at=?4, "
                   "claimed_until=?5, last_status_code=?6, last_error=?7, delivered_at=?8 "
                   "WHERE delivery_id=?1");
  FULCRUM_RETURN_IF_ERROR(update.bind(1, d.delivery_id)
                              .bind(2, d.status)
                              .bind(3, static_cast<std::int64_t>(d.attempts))
                              .bind(4, d.next_attempt_at)
                              .bind(5, d.claimed_until)
                              .bind(6, static_cast<std::int64_t>(d.last_status_code))
                              .bind(7, d.last_error)
                              .bind(8, d.delivered_at)
                              .run());
  if (sqlite3_changes(writer_) == 0) return not_found("no webhook delivery " + d.delivery_id);
  return Status::ok();
}

Result<std::optional<WebhookDelivery>> SqliteStore::get_webhook_delivery(
    const std::string& delivery_id) {
  FULCRUM_WITH_READER(reader);
  const std::string sql = std::string(kDeliveryColumns) + " WHERE delivery_id=?1";
  Statement query(reader.db(), sql.c_str());
  query.bind(1, delivery_id);
  std::optional<WebhookDelivery> found;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { found = read_delivery(row); }));
  return found;
}

Result<std::vector<WebhookDelivery>> SqliteStore::list_webhook_deliveries(
    const WebhookDeliveryFilter& filter) {
  FULCRUM_WITH_READER(reader);
  const std::string sql = std::string(kDeliveryColumns) +
                          " WHERE (?1='' OR endpoint_id=?1) AND (?2='' OR status=?2) "
                          "ORDER BY created_at DESC, delivery_id DESC LIMIT ?3";
  Statement query(reader.db(), sql.c_str());
  query.bind(1, filter.endpoint_id).bind(2, filter.status).bind(3, static_cast<std::int64_t>(filter.limit));
  std::vector<WebhookDelivery> out;
  FULCRUM_RETURN_IF_ERROR(query.each_row([&](const Statement& row) { out.push_back(read_delivery(row)); }));
  return out;
}

}  // namespace fulcrum
