#include "store/sqlite/sqlite_schema.h"

namespace fulcrum::sqlite {

// Never edit a shipped migration: append a new one. Index choice: events are appended in
// roughly time order, so `at` indexes stay cheap to maintain during bulk ingestion; the
// experiment_id and metric indexes are low-cardinality, so new rows append to the end of
// their key's range (no random b-tree inserts, which cost 10x at millions of users).
const std::vector<std::string_view>& migrations() {
  static const std::vector<std::string_view> kMigrations = {
      R"sql(
CREATE TABLE users(
  user_id TEXT PRIMARY KEY, tier INTEGER NOT NULL, signup_at INTEGER NOT NULL,
  country TEXT NOT NULL, app_version TEXT NOT NULL, attributes TEXT NOT NULL);
CREATE TABLE features(
  name TEXT PRIMARY KEY, required_tier INTEGER NOT NULL, monthly_cost_minor INTEGER NOT NULL,
  monthly_value_minor INTEGER NOT NULL, category TEXT NOT NULL);
CREATE TABLE feature_usage(user_id TEXT NOT NULL, feature TEXT NOT NULL, at INTEGER NOT NULL,
  count INTEGER NOT NULL);
CREATE INDEX feature_usage_at ON feature_usage(at);
CREATE TABLE sessions(user_id TEXT NOT NULL, at INTEGER NOT NULL,
  duration_seconds INTEGER NOT NULL);
CREATE INDEX sessions_at ON sessions(at);
CREATE TABLE subscription_changes(user_id TEXT NOT NULL, at INTEGER NOT NULL,
  kind INTEGER NOT NULL, from_tier INTEGER NOT NULL, to_tier INTEGER NOT NULL);
CREATE INDEX subscription_changes_at ON subscription_changes(at);
CREATE TABLE payments(user_id TEXT NOT NULL, at INTEGER NOT NULL, succeeded INTEGER NOT NULL,
  amount_minor INTEGER NOT NULL);
CREATE INDEX payments_at ON payments(at);
CREATE TABLE paywall_hits(user_id TEXT NOT NULL, feature TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX paywall_hits_at ON paywall_hits(at);
CREATE TABLE exposures(experiment_id TEXT NOT NULL, user_id TEXT NOT NULL,
  variant TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX exposures_experiment ON exposures(experiment_id);
CREATE TABLE metric_events(user_id TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL,
  at INTEGER NOT NULL);
CREATE INDEX metric_events_metric ON metric_events(metric);
CREATE TABLE documents(kind TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL,
  body TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL, PRIMARY KEY(kind, id));
CREATE TABLE campaign_members(campaign_id TEXT NOT NULL, user_id TEXT NOT NULL,
  holdout INTEGER NOT NULL, targeted_at INTEGER NOT NULL, PRIMARY KEY(campaign_id, user_id));
CREATE INDEX campaign_members_user ON campaign_members(user_id, targeted_at);
CREATE TABLE api_keys(key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL, label TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER);
CREATE TABLE audit_log(sequence INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL,
  previous_hash TEXT NOT NULL, hash TEXT NOT NULL);
)sql",
      // 2: events move into segments (see event_segment.h); users get integer keys.
      // SqliteStore::open converts the rows of the schema-1 event tables after this script.
      R"sql(
CREATE TABLE user_keys(user_key INTEGER PRIMARY KEY, user_id TEXT NOT NULL UNIQUE);
CREATE TABLE event_segments(segment_id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind INTEGER NOT NULL, key TEXT NOT NULL, event_count INTEGER NOT NULL,
  min_at INTEGER NOT NULL, max_at INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE INDEX event_segments_kind_key ON event_segments(kind, key, segment_id);
)sql",
      // 3: the schema-1 event tables, now empty.
      R"sql(
DROP TABLE feature_usage;
DROP TABLE sessions;
DROP TABLE subscription_changes;
DROP TABLE payments;
DROP TABLE paywall_hits;
DROP TABLE exposures;
DROP TABLE metric_events;
)sql",
      // 4: usage rollups (store/rollup.h), kept by ingest() in the events' transaction.
      // Keyed day first: ingestion runs in roughly time order, so upserts land at the end of
      // the b-tree; one user's rows are read by point lookups per day. SqliteStore::open
      // builds the rows of an existing store's events after this script.
      R"sql(
CREATE TABLE feature_keys(feature_key INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE usage_user_days(day INTEGER NOT NULL, user_key INTEGER NOT NULL,
  sessions INTEGER NOT NULL, session_seconds INTEGER NOT NULL, usage_events INTEGER NOT NULL,
  uses INTEGER NOT NULL, payments_succeeded INTEGER NOT NULL, payments_failed INTEGER NOT NULL,
  amount_succeeded_minor INTEGER NOT NULL, amount_failed_minor INTEGER NOT NULL,
  paywall_hits INTEGER NOT NULL, PRIMARY KEY(day, user_key)) WITHOUT ROWID;
CREATE TABLE usage_feature_days(day INTEGER NOT NULL, user_key INTEGER NOT NULL,
  feature_key INTEGER NOT NULL, usage_events INTEGER NOT NULL, uses INTEGER NOT NULL,
  paywall_hits INTEGER NOT NULL, PRIMARY KEY(day, user_key, feature_key)) WITHOUT ROWID;
CREATE TABLE usage_tier_changes(user_key INTEGER NOT NULL, at INTEGER NOT NULL,
  kind INTEGER NOT NULL, from_tier INTEGER NOT NULL, to_tier INTEGER NOT NULL);
CREATE INDEX usage_tier_changes_user ON usage_tier_changes(user_key, at);
)sql",
      // 5: automation (store/automation.h): the document change feed (outbox), job leases
      // and runs, webhook deliveries.
      R"sql(
CREATE TABLE document_changes(sequence INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
  id TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
  previous_status TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL,
  fanned_out INTEGER NOT NULL DEFAULT 0);
CREATE INDEX document_changes_pending ON document_changes(sequence) WHERE fanned_out = 0;
CREATE TABLE job_leases(job TEXT NOT NULL, period TEXT NOT NULL, holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL, done INTEGER NOT NULL, PRIMARY KEY(job, period));
CREATE TABLE job_runs(run_id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL,
  period TEXT NOT NULL, runner TEXT NOT NULL, started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL, duration_seconds REAL NOT NULL, outcome TEXT NOT NULL,
  detail TEXT NOT NULL);
CREATE INDEX job_runs_job ON job_runs(job, run_id);
CREATE TABLE webhook_deliveries(delivery_id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL,
  event_type TEXT NOT NULL, event_id TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, claimed_until INTEGER NOT NULL,
  last_status_code INTEGER NOT NULL, last_error TEXT NOT NULL, created_at INTEGER NOT NULL,
  delivered_at INTEGER NOT NULL);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at)
  WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at);
)sql",
      // 6: event identity (store/event_identity.h) and the responses remembered under an
      // Idempotency-Key (Store::ingest), both written in the ingest transaction.
      R"sql(
CREATE TABLE event_ids(kind INTEGER NOT NULL, event_id TEXT NOT NULL,
  PRIMARY KEY(kind, event_id)) WITHOUT ROWID;
CREATE TABLE idempotency_keys(key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);
)sql",
      // 7: per-user revocation of user tokens (tokens issued at or before revoked_at fail).
      R"sql(
CREATE TABLE user_token_revocations(user_id TEXT PRIMARY KEY, revoked_at INTEGER NOT NULL)
  WITHOUT ROWID;
)sql",
  };
  return kMigrations;
}

}  // namespace fulcrum::sqlite
