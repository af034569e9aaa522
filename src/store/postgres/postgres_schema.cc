#include "store/postgres/postgres_schema.h"

namespace fulcrum::postgres {

const std::string& migration_2();

// Never edit a shipped migration: append a new one. Text keys use the "C" collation so
// ORDER BY gives byte order, as SQLite does, whatever locale the database was created with.
// The experiment indexes are covering (every column the analyses read), so the first-exposure
// and per-user metric joins can run as index-only scans.
const std::vector<std::string_view>& migrations() {
  static const std::vector<std::string_view> kMigrations = {
      R"sql(
CREATE TABLE users(
  user_id TEXT COLLATE "C" PRIMARY KEY, tier INTEGER NOT NULL, signup_at BIGINT NOT NULL,
  country TEXT NOT NULL, app_version TEXT NOT NULL, attributes TEXT NOT NULL);
CREATE TABLE features(
  name TEXT COLLATE "C" PRIMARY KEY, required_tier INTEGER NOT NULL,
  monthly_cost_minor BIGINT NOT NULL, monthly_value_minor BIGINT NOT NULL,
  category TEXT NOT NULL);
CREATE TABLE feature_usage(user_id TEXT COLLATE "C" NOT NULL, feature TEXT COLLATE "C" NOT NULL,
  at BIGINT NOT NULL, count INTEGER NOT NULL);
CREATE INDEX feature_usage_at ON feature_usage(at);
CREATE TABLE sessions(user_id TEXT COLLATE "C" NOT NULL, at BIGINT NOT NULL,
  duration_seconds INTEGER NOT NULL);
CREATE INDEX sessions_at ON sessions(at);
CREATE TABLE subscription_changes(user_id TEXT COLLATE "C" NOT NULL, at BIGINT NOT NULL,
  kind INTEGER NOT NULL, from_tier INTEGER NOT NULL, to_tier INTEGER NOT NULL);
CREATE INDEX subscription_changes_at ON subscription_changes(at);
CREATE TABLE payments(user_id TEXT COLLATE "C" NOT NULL, at BIGINT NOT NULL,
  succeeded BOOLEAN NOT NULL, amount_minor BIGINT NOT NULL);
CREATE INDEX payments_at ON payments(at);
CREATE TABLE paywall_hits(user_id TEXT COLLATE "C" NOT NULL, feature TEXT COLLATE "C" NOT NULL,
  at BIGINT NOT NULL);
CREATE INDEX paywall_hits_at ON paywall_hits(at);
CREATE TABLE exposures(experiment_id TEXT COLLATE "C" NOT NULL, user_id TEXT COLLATE "C" NOT NULL,
  variant TEXT COLLATE "C" NOT NULL, at BIGINT NOT NULL);
CREATE INDEX exposures_experiment_user ON exposures(experiment_id, user_id, at, variant);
CREATE TABLE metric_events(user_id TEXT COLLATE "C" NOT NULL, metric TEXT COLLATE "C" NOT NULL,
  value DOUBLE PRECISION NOT NULL, at BIGINT NOT NULL);
CREATE INDEX metric_events_metric_user ON metric_events(metric, user_id, at, value);
CREATE TABLE documents(kind TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY(kind, id));
CREATE TABLE campaign_members(campaign_id TEXT COLLATE "C" NOT NULL,
  user_id TEXT COLLATE "C" NOT NULL, holdout BOOLEAN NOT NULL, targeted_at BIGINT NOT NULL,
  PRIMARY KEY(campaign_id, user_id));
CREATE INDEX campaign_members_user ON campaign_members(user_id, targeted_at);
CREATE TABLE api_keys(key_id TEXT COLLATE "C" PRIMARY KEY,
  key_hash TEXT COLLATE "C" NOT NULL UNIQUE, role TEXT NOT NULL, label TEXT NOT NULL,
  created_at BIGINT NOT NULL, revoked_at BIGINT);
CREATE TABLE audit_log(sequence BIGINT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL,
  previous_hash TEXT NOT NULL, hash TEXT NOT NULL);
)sql",
      // 2: usage rollups (store/rollup.h), built here from the stored events and then kept by
      // ingest() in the events' transaction. Keyed day first: ingestion runs in roughly time
      // order, so new rows append to the right edge of the primary-key b-tree.
      migration_2().c_str(),
      // 3: event identity (store/event_identity.h) and the responses remembered under an
      // Idempotency-Key (Store::ingest), both written in the ingest transaction.
      R"sql(
CREATE TABLE event_ids(kind INTEGER NOT NULL, event_id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY(kind, event_id));
CREATE TABLE idempotency_keys(key TEXT COLLATE "C" PRIMARY KEY, fingerprint TEXT NOT NULL,
  status INTEGER NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);
)sql",
  };
  return kMigrations;
}

namespace {

// The UTC day of `at` (floor division, also right for times before 1970).
constexpr std::string_view kDay = "((at - (((at % 86400) + 86400) % 86400)) / 86400)::integer";

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// {p} = events prefix, {day} = day expression.
std::string expand(std::string_view sql, std::string_view prefix) {
  return replace_all(replace_all(std::string(sql), "{p}", prefix), "{day}", kDay);
}

}  // namespace

const std::string& migration_2() {
  static const std::string sql = R"sql(
CREATE TABLE user_keys(user_key INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  user_id TEXT COLLATE "C" NOT NULL UNIQUE);
CREATE TABLE feature_keys(feature_key INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL UNIQUE);
CREATE TABLE usage_user_days(day INTEGER NOT NULL, user_key INTEGER NOT NULL,
  sessions BIGINT NOT NULL, session_seconds BIGINT NOT NULL, usage_events BIGINT NOT NULL,
  uses BIGINT NOT NULL, payments_succeeded BIGINT NOT NULL, payments_failed BIGINT NOT NULL,
  amount_succeeded_minor BIGINT NOT NULL, amount_failed_minor BIGINT NOT NULL,
  paywall_hits BIGINT NOT NULL, PRIMARY KEY(day, user_key));
CREATE TABLE usage_feature_days(day INTEGER NOT NULL, user_key INTEGER NOT NULL,
  feature_key INTEGER NOT NULL, usage_events BIGINT NOT NULL, uses BIGINT NOT NULL,
  paywall_hits BIGINT NOT NULL, PRIMARY KEY(day, user_key, feature_key));
CREATE TABLE usage_tier_changes(user_key INTEGER NOT NULL, at BIGINT NOT NULL,
  kind INTEGER NOT NULL, from_tier INTEGER NOT NULL, to_tier INTEGER NOT NULL);
CREATE INDEX usage_tier_changes_user ON usage_tier_changes(user_key, at);
)sql" + rollup_merge_sql("");
  return sql;
}

std::string user_day_rollup_select(std::string_view prefix) {
  return expand(R"sql(
SELECT e.day, k.user_key, SUM(e.sessions)::bigint, SUM(e.session_seconds)::bigint,
  SUM(e.usage_events)::bigint, SUM(e.uses)::bigint, SUM(e.payments_succeeded)::bigint,
  SUM(e.payments_failed)::bigint, SUM(e.amount_succeeded_minor)::bigint,
  SUM(e.amount_failed_minor)::bigint, SUM(e.paywall_hits)::bigint
FROM (
  SELECT user_id, {day} AS day, 1 AS sessions, duration_seconds::bigint AS session_seconds,
    0 AS usage_events, 0::bigint AS uses, 0 AS payments_succeeded, 0 AS payments_failed,
    0::bigint AS amount_succeeded_minor, 0::bigint AS amount_failed_minor, 0 AS paywall_hits
  FROM {p}sessions
  UNION ALL SELECT user_id, {day}, 0, 0, 1, count, 0, 0, 0, 0, 0 FROM {p}feature_usage
  UNION ALL SELECT user_id, {day}, 0, 0, 0, 0, CASE WHEN succeeded THEN 1 ELSE 0 END,
    CASE WHEN succeeded THEN 0 ELSE 1 END, CASE WHEN succeeded THEN amount_minor ELSE 0 END,
    CASE WHEN succeeded THEN 0 ELSE amount_minor END, 0 FROM {p}payments
  UNION ALL SELECT user_id, {day}, 0, 0, 0, 0, 0, 0, 0, 0, 1 FROM {p}paywall_hits
) e JOIN user_keys k ON k.user_id = e.user_id
GROUP BY e.day, k.user_key)sql",
                prefix);
}

std::string feature_day_rollup_select(std::string_view prefix) {
  return expand(R"sql(
SELECT e.day, k.user_key, f.feature_key, SUM(e.usage_events)::bigint, SUM(e.uses)::bigint,
  SUM(e.paywall_hits)::bigint
FROM (
  SELECT user_id, feature, {day} AS day, 1 AS usage_events, count::bigint AS uses,
    0 AS paywall_hits FROM {p}feature_usage
  UNION ALL SELECT user_id, feature, {day}, 0, 0, 1 FROM {p}paywall_hits
) e JOIN user_keys k ON k.user_id = e.user_id JOIN feature_keys f ON f.name = e.feature
GROUP BY e.day, k.user_key, f.feature_key)sql",
                prefix);
}

std::string tier_change_rollup_select(std::string_view prefix) {
  return expand(R"sql(
SELECT k.user_key, e.at, e.kind, e.from_tier, e.to_tier FROM {p}subscription_changes e
JOIN user_keys k ON k.user_id = e.user_id)sql",
                prefix);
}

std::string rollup_merge_sql(std::string_view prefix) {
  // NOT EXISTS first, so ON CONFLICT (a concurrent writer) is rare and identity values are
  // not burnt for users who already have a key.
  return expand(R"sql(
;
INSERT INTO user_keys(user_id)
SELECT DISTINCT e.user_id FROM (
  SELECT user_id FROM {p}feature_usage UNION ALL SELECT user_id FROM {p}sessions
  UNION ALL SELECT user_id FROM {p}subscription_changes UNION ALL SELECT user_id FROM {p}payments
  UNION ALL SELECT user_id FROM {p}paywall_hits) e
WHERE NOT EXISTS (SELECT 1 FROM user_keys k WHERE k.user_id = e.user_id)
ON CONFLICT (user_id) DO NOTHING;
INSERT INTO feature_keys(name)
SELECT DISTINCT e.feature FROM (
  SELECT feature FROM {p}feature_usage UNION ALL SELECT feature FROM {p}paywall_hits) e
WHERE NOT EXISTS (SELECT 1 FROM feature_keys f WHERE f.name = e.feature)
ON CONFLICT (name) DO NOTHING;
INSERT INTO usage_user_days AS t(day, user_key, sessions, session_seconds, usage_events, uses,
  payments_succeeded, payments_failed, amount_succeeded_minor, amount_failed_minor, paywall_hits)
)sql",
                prefix) +
         user_day_rollup_select(prefix) + R"sql(
ON CONFLICT (day, user_key) DO UPDATE SET sessions = t.sessions + excluded.sessions,
  session_seconds = t.session_seconds + excluded.session_seconds,
  usage_events = t.usage_events + excluded.usage_events, uses = t.uses + excluded.uses,
  payments_succeeded = t.payments_succeeded + excluded.payments_succeeded,
  payments_failed = t.payments_failed + excluded.payments_failed,
  amount_succeeded_minor = t.amount_succeeded_minor + excluded.amount_succeeded_minor,
  amount_failed_minor = t.amount_failed_minor + excluded.amount_failed_minor,
  paywall_hits = t.paywall_hits + excluded.paywall_hits;
INSERT INTO usage_feature_days AS t(day, user_key, feature_key, usage_events, uses, paywall_hits)
)sql" + feature_day_rollup_select(prefix) +
         R"sql(
ON CONFLICT (day, user_key, feature_key) DO UPDATE SET
  usage_events = t.usage_events + excluded.usage_events, uses = t.uses + excluded.uses,
  paywall_hits = t.paywall_hits + excluded.paywall_hits;
INSERT INTO usage_tier_changes(user_key, at, kind, from_tier, to_tier)
)sql" + tier_change_rollup_select(prefix) +
         ";\n";
}

}  // namespace fulcrum::postgres
