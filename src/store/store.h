// The Store interface: everything Fulcrum persists, behind one abstract class so the
// embedded SQLite backend and the PostgreSQL backend are interchangeable.
//
// Thread-safety: a Store may be called from several threads; backends serialise writes.
// Durability: when a write returns OK, it survives a crash of the process.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/model.h"
#include "store/rollup.h"

namespace fulcrum {

struct TimeRange {
  UnixSeconds from = 0;                   // inclusive; 0 (the default) means no lower bound
  UnixSeconds to = INT64_MAX;             // exclusive
};

class Store {
 public:
  virtual ~Store() = default;

  // Schema version after migrations (see store/schema.h).
  virtual Result<int> schema_version() = 0;

  // --- ingestion ---------------------------------------------------------------------
  // Stores the whole batch in one transaction (users and features are upserted).
  virtual Status ingest(const EventBatch& batch) = 0;

  // --- reference data ------------------------------------------------------------------
  virtual Result<std::optional<User>> get_user(const std::string& user_id) = 0;
  virtual Status scan_users(const std::function<void(const User&)>& visit) = 0;
  virtual Result<std::int64_t> count_users() = 0;
  virtual Result<std::vector<Feature>> list_features() = 0;

  // --- event scans: every event with from <= at < to, in no particular order ------------
  virtual Status scan_feature_usage(TimeRange range,
                                    const std::function<void(const FeatureUsageEvent&)>& visit) = 0;
  virtual Status scan_sessions(TimeRange range,
                               const std::function<void(const SessionEvent&)>& visit) = 0;
  virtual Status scan_subscription_changes(
      TimeRange range, const std::function<void(const SubscriptionChangeEvent&)>& visit) = 0;
  virtual Status scan_payments(TimeRange range,
                               const std::function<void(const PaymentEvent&)>& visit) = 0;
  virtual Status scan_paywall_hits(TimeRange range,
                                   const std::function<void(const PaywallHitEvent&)>& visit) = 0;
  virtual Status scan_metric_events(TimeRange range,
                                    const std::function<void(const MetricEvent&)>& visit) = 0;
  virtual Status scan_exposures(const std::string& experiment_id,
                                const std::function<void(const ExposureEvent&)>& visit) = 0;
  // Latest event time over all event tables (0 when empty): "now" for demo data analyses.
  virtual Result<UnixSeconds> latest_event_time() = 0;
  // Earliest event time over all event tables (0 when empty): where the history starts.
  virtual Result<UnixSeconds> earliest_event_time() = 0;

  // --- usage rollups (store/rollup.h): per user-day aggregates ingest() maintains in the
  // transaction of the events, the one way engines read history (through src/usage) ---------
  // Integer keys of users and features that have events (a user or feature without events
  // may have none). Keys are stable and never reused.
  virtual Status scan_user_keys(
      const std::function<void(std::uint32_t, const std::string&)>& visit) = 0;
  virtual Result<std::optional<std::uint32_t>> find_user_key(const std::string& user_id) = 0;
  virtual Status scan_feature_keys(
      const std::function<void(std::uint32_t, const std::string&)>& visit) = 0;
  // Rows of days in [query.from_day, query.to_day), of query.user_key only when set (then
  // the store reads that user's rows only), in no particular order.
  virtual Status scan_user_days(const RollupQuery& query,
                                const std::function<void(const UserDayRollup&)>& visit) = 0;
  virtual Status scan_feature_days(const RollupQuery& query,
                                   const std::function<void(const FeatureDayRollup&)>& visit) = 0;
  // The tier timeline of one user (or of everyone), in no particular order.
  virtual Status scan_tier_changes(std::optional<std::uint32_t> user_key,
                                   const std::function<void(const TierChangeRollup&)>& visit) = 0;
  // Recomputes every rollup from the stored events and compares them with the stored rows.
  virtual Result<RollupVerification> verify_rollups() = 0;
  // Replaces the rollups with ones recomputed from the events, in one transaction (the
  // schema migration that introduced them runs this on an existing store).
  virtual Status rebuild_rollups() = 0;

  // --- experiments analysis, pushed down to the store --------------------------------------
  // Exposed users per variant (first exposure per user; a user seen in two variants is
  // counted in the first one and reported by count_multi_variant_users).
  virtual Result<std::vector<std::pair<std::string, std::int64_t>>> exposure_counts(
      const std::string& experiment_id) = 0;
  virtual Result<std::int64_t> count_multi_variant_users(const std::string& experiment_id) = 0;
  virtual Result<std::vector<VariantMetricStats>> variant_metric_stats(
      const std::string& experiment_id, const std::string& metric,
      UnixSeconds pre_period_seconds) = 0;
  // Daily cumulative exposed users and converters per variant for a metric (for charts):
  // rows of (day start, variant, cumulative users, cumulative converted users).
  struct DailyCumulative {
    UnixSeconds day = 0;
    std::string variant;
    std::int64_t users = 0;
    std::int64_t converted = 0;
  };
  virtual Result<std::vector<DailyCumulative>> daily_cumulative(const std::string& experiment_id,
                                                                const std::string& metric) = 0;

  // --- documents (experiments, campaigns, ...) ---------------------------------------------
  // Optimistic concurrency: doc.version is the version the caller read (0 for a new
  // document). Writes only when the stored version equals it (absent counts as 0) and
  // returns the new version (old + 1); otherwise kAlreadyExists (version 0 but present)
  // or kFailedPrecondition (someone else wrote in between).
  virtual Result<std::int64_t> put_document(const Document& doc) = 0;
  virtual Result<std::optional<Document>> get_document(const std::string& kind,
                                                       const std::string& id) = 0;
  virtual Result<std::vector<Document>> list_documents(const std::string& kind) = 0;
  // Deletes a document (kNotFound when absent) so that its text does not linger in the
  // store's files: SQLite overwrites the freed pages (secure_delete) and checkpoints the WAL;
  // PostgreSQL vacuums the table. Used to erase secrets earlier versions kept there.
  virtual Status erase_document(const std::string& kind, const std::string& id) = 0;

  // Campaign membership: which users a campaign targeted and whether held out.
  struct CampaignMember {
    std::string campaign_id;
    std::string user_id;
    bool holdout = false;
    UnixSeconds targeted_at = 0;
  };
  virtual Status add_campaign_members(const std::vector<CampaignMember>& members) = 0;
  // put_document and add_campaign_members in one transaction: a new campaign is stored
  // with its members or not at all. Returns the document's new version.
  virtual Result<std::int64_t> put_document_and_members(
      const Document& doc, const std::vector<CampaignMember>& members) = 0;
  virtual Result<std::vector<CampaignMember>> campaign_members(const std::string& campaign_id) = 0;
  // Last time each of these users was targeted by any campaign (for cooldowns).
  virtual Result<std::vector<std::pair<std::string, UnixSeconds>>> last_targeted() = 0;

  // --- access control ----------------------------------------------------------------------
  virtual Status put_api_key(const ApiKeyRecord& key) = 0;
  virtual Result<std::optional<ApiKeyRecord>> find_api_key_by_hash(const std::string& key_hash) = 0;
  virtual Result<std::vector<ApiKeyRecord>> list_api_keys() = 0;
  virtual Status revoke_api_key(const std::string& key_id, UnixSeconds at) = 0;
  // Revokes every user token of `user_id` issued at or before `at` (a later revocation
  // moves the point forward, an earlier one never moves it back).
  virtual Status revoke_user_tokens(const std::string& user_id, UnixSeconds at) = 0;
  // The point set by revoke_user_tokens, if any.
  virtual Result<std::optional<UnixSeconds>> user_tokens_revoked_at(const std::string& user_id) = 0;

  // --- audit log ---------------------------------------------------------------------------
  // Appends atomically: the store assigns sequence and previous_hash (of the last entry),
  // then calls `compute_hash` on the filled entry to set `hash`. Returns the stored entry.
  virtual Result<AuditEntry> append_audit(
      AuditEntry entry, const std::function<std::string(const AuditEntry&)>& compute_hash) = 0;
  virtual Status scan_audit(const std::function<void(const AuditEntry&)>& visit) = 0;
  // The newest entry (nullopt when the log is empty), without scanning the log.
  virtual Result<std::optional<AuditEntry>> audit_head() = 0;

  // --- group commit --------------------------------------------------------------------------
  // Stores `exposures` and appends `entries` to the audit log (in order, each filled and
  // chained exactly as append_audit does) in ONE transaction, so a server can answer several
  // concurrent calls after a single durable commit: all of it is stored or none. Returns the
  // stored entries.
  virtual Result<std::vector<AuditEntry>> append_exposures_and_audit(
      const std::vector<ExposureEvent>& exposures, std::vector<AuditEntry> entries,
      const std::function<std::string(const AuditEntry&)>& compute_hash) = 0;
};

// Opens a store from a location: a file path (SQLite, created when absent) or a
// postgres:// / postgresql:// URL when the PostgreSQL backend is built in.
Result<std::unique_ptr<Store>> open_store(const std::string& location);

}  // namespace fulcrum
