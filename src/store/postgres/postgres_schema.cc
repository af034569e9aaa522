#include "store/postgres/postgres_schema.h"

namespace fulcrum::postgres {

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
  };
  return kMigrations;
}

}  // namespace fulcrum::postgres
