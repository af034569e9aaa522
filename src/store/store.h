// The Store interface: everything Fulcrum persists, behind one abstract class so the
// embedded SQLite backend and the PostgreSQL backend are interchangeable.
//
// Thread-safety: a Store may be called from several threads; backends serialise writes.
// Durability: when a write returns OK, it survives a crash of the process.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "store/automation.h"
#include "store/model.h"
#include "store/rollup.h"

namespace fulcrum {

struct TimeRange {
  UnixSeconds from = 0;                   // inclusive; 0 (the default) means no lower bound
  UnixSeconds to = INT64_MAX;             // exclusive
};

// A response remembered under an idempotency key (the ingestion routes' Idempotency-Key
// header) until `expires_at`, so a retried request gets the first answer again.
struct IdempotentResponse {
  std::string fingerprint;  // of the request that produced it (method, path, query, body)
  int status = 0;
  std::string body;
  UnixSeconds created_at = 0;
  UnixSeconds expires_at = 0;
};

// What one ingest() did.
struct IngestReport {
  std::int64_t stored = 0;  // records written
  // Records not written because their event_id was already stored for their kind, by an
  // earlier batch or earlier in this one.
  std::int64_t duplicates = 0;
  // Set when nothing was ingested because IngestOptions::idempotency named a key that is
  // already in use: the response remembered for it (the caller compares the fingerprint).
  std::optional<IdempotentResponse> replayed;
};

// Claims an idempotency key in the ingest transaction: the batch and the remembered
// response commit together, so a retry can never store the batch a second time.
struct IdempotentRequest {
  std::string key;  // the caller's scope and key, e.g. "<key id> <Idempotency-Key>"
  std::string fingerprint;
  UnixSeconds now = 0;         // rows that expired by now are free (and are deleted)
  UnixSeconds expires_at = 0;  // how long this one is remembered
  // The response to remember, built inside the transaction from what it stored.
  std::function<std::pair<int, std::string>(const IngestReport&)> respond;
};

struct IngestOptions {
  const IdempotentRequest* idempotency = nullptr;
};

class Store {
 public:
  virtual ~Store() = default;

  // Schema version after migrations (see store/schema.h).
  virtual Result<int> schema_version() = 0;

  // --- ingestion ---------------------------------------------------------------------
  // Stores the whole batch in one transaction (users and features are upserted). Records
  // with an event_id already stored for their kind (or repeated within the batch) are left
  // out and counted as duplicates; the usage rollups never see them. A disk or quota that
  // is full is kResourceExhausted, a store that cannot be reached kUnavailable; in both
  // cases nothing of the batch is stored.
  virtual Result<IngestReport> ingest(const EventBatch& batch, const IngestOptions& options) = 0;
  Result<IngestReport> ingest(const EventBatch& batch) { return ingest(batch, IngestOptions{}); }
  // The unexpired response remembered under an idempotency key, if any.
  virtual Result<std::optional<IdempotentResponse>> find_idempotent_response(
      const std::string& key, UnixSeconds now) = 0;

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
  // The variant of the user's first exposure in the experiment (the one exposure_counts
  // counts the user in), nullopt when never exposed. Sticky
  // assignment of bandit tests reads it on the assign path.
  virtual Result<std::optional<std::string>> first_exposure_variant(
      const std::string& experiment_id, const std::string& user_id) = 0;
  virtual Result<std::vector<VariantMetricStats>> variant_metric_stats(
      const std::string& experiment_id, const std::string& metric,
      UnixSeconds pre_period_seconds) = 0;
  // Each exposed user's observation (variant_metric_stats' per-user value) with the same
  // user's sums in windows before the first exposure, for capping, quantiles, CUPED on
  // per-user values and CUPAC. `pre_window_edges` are seconds before the first exposure:
  // empty (no windows) or 0 first, strictly rising, at most 8 windows and 3650 days;
  // otherwise kInvalidArgument naming "pre_window_edges".
  virtual Result<ExposedUserMetric> exposed_user_metric(
      const std::string& experiment_id, const std::string& metric,
      std::span<const UnixSeconds> pre_window_edges) = 0;
  // variant_metric_stats' post-exposure statistics grouped by (value of a user attribute,
  // variant), aggregated in the store (GROUP BY on PostgreSQL). `attribute` is "tier" (its
  // name: free, plus, premium), "country", "app_version", or a key of the users' free-form
  // attributes; users without a value (or without a stored user) fall in slice "". Every
  // per-user value is capped at `cap` before the sums (+inf: no cap); `converted` counts
  // uncapped positive values. kInvalidArgument naming "slice" when the attribute name is not
  // is_slice_attribute_name(). Rows in no particular order.
  virtual Result<std::vector<SliceMetricStats>> sliced_metric_stats(
      const std::string& experiment_id, const std::string& metric, const std::string& attribute,
      double cap) = 0;
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

  // --- holdouts: per-user metric sums over consecutive periods ------------------------------
  // Every stored user with the sums of one metric's values in each period
  // [edges[i], edges[i + 1]) (edges ascending, 2 to kMaxMetricSumPeriods + 1 of them), summed
  // in the store (one pass over the metric's events, GROUP BY on PostgreSQL): visit(user,
  // sums) with sums[i] for period i (0 for a user without events in it). Events of users not
  // stored are left out. Users in no particular order. The backends hold one double per
  // stored user and period, never one struct per event. kInvalidArgument naming "edges".
  virtual Status scan_user_period_sums(
      const std::string& metric, const std::vector<UnixSeconds>& edges,
      const std::function<void(const User&, const double* sums)>& visit) = 0;

  // --- documents (experiments, campaigns, ...) ---------------------------------------------
  // Optimistic concurrency: doc.version is the version the caller read (0 for a new
  // document). Writes only when the stored version equals it (absent counts as 0) and
  // returns the new version (old + 1); otherwise kAlreadyExists (version 0 but present)
  // or kFailedPrecondition (someone else wrote in between).
  virtual Result<std::int64_t> put_document(const Document& doc) = 0;
  virtual Result<std::optional<Document>> get_document(const std::string& kind,
                                                       const std::string& id) = 0;
  // The document without its body (body empty): its version, status and times, for callers
  // that need only those of a large document (a stored model's body is tens of MB).
  virtual Result<std::optional<Document>> get_document_head(const std::string& kind,
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
  // stored entries. These exposures are assignments the server made (assign, remote eval,
  // OFREP): one without an event_id is identified by its (experiment, user, variant), so a
  // repeated or retried evaluation stores it once.
  virtual Result<std::vector<AuditEntry>> append_exposures_and_audit(
      const std::vector<ExposureEvent>& exposures, std::vector<AuditEntry> entries,
      const std::function<std::string(const AuditEntry&)>& compute_hash) = 0;

  // --- automation (store/automation.h; src/automation uses these) --------------------------
  // Change-feed rows not yet fanned out, oldest first, at most `limit`.
  virtual Result<std::vector<DocumentChange>> pending_document_changes(std::size_t limit) = 0;
  // In one transaction: stores the deliveries (a delivery_id already stored is left as it
  // is, so two replicas fanning out the same change store it once) and marks the changes
  // fanned out.
  virtual Status fan_out_document_changes(const std::vector<std::int64_t>& sequences,
                                          const std::vector<WebhookDelivery>& deliveries) = 0;
  // Deletes up to `limit` change-feed rows that were fanned out and whose change happened
  // before `before`, oldest first; returns how many. Rows not yet fanned out are never
  // deleted, whatever their age.
  virtual Result<std::int64_t> prune_document_changes(UnixSeconds before,
                                                      std::size_t limit) = 0;
  // Takes the lease of (job, period) for `holder` until `expires_at` when nobody holds it,
  // its holder's lease expired before `now`, or `holder` already holds it. Atomic across
  // processes sharing the store.
  virtual Result<JobLeaseOutcome> acquire_job_lease(const std::string& job,
                                                    const std::string& period,
                                                    const std::string& holder, UnixSeconds now,
                                                    UnixSeconds expires_at) = 0;
  // The holder finished the period: the lease becomes done (no one runs that period again)
  // when `done`, else it is released for another runner. kFailedPrecondition when `holder`
  // no longer holds it (its lease expired and someone else took it over).
  virtual Status finish_job_lease(const std::string& job, const std::string& period,
                                  const std::string& holder, bool done) = 0;
  // Inserts (run_id 0: returns the new id) or updates a run record.
  virtual Result<std::int64_t> put_job_run(const JobRun& run) = 0;
  // The newest runs (of `job` only when not empty), newest first.
  virtual Result<std::vector<JobRun>> list_job_runs(const std::string& job, std::size_t limit) = 0;
  // Deliveries that are pending, due (next_attempt_at <= now) and not claimed (claimed_until
  // <= now), oldest first; each returned one is claimed until `claim_until` atomically, so two
  // senders never hold the same delivery at once.
  virtual Result<std::vector<WebhookDelivery>> claim_webhook_deliveries(UnixSeconds now,
                                                                        UnixSeconds claim_until,
                                                                        std::size_t limit) = 0;
  // Writes a delivery's state (attempts, status, next attempt, last answer) by delivery_id.
  virtual Status update_webhook_delivery(const WebhookDelivery& delivery) = 0;
  virtual Result<std::optional<WebhookDelivery>> get_webhook_delivery(
      const std::string& delivery_id) = 0;
  // Newest first.
  virtual Result<std::vector<WebhookDelivery>> list_webhook_deliveries(
      const WebhookDeliveryFilter& filter) = 0;
};

// A user attribute name results can be sliced by: 1 to 64 characters of [A-Za-z0-9_-]
// starting with a letter or '_' (it becomes a JSON key in the store's query).
bool is_slice_attribute_name(std::string_view name);
inline constexpr std::size_t kMaxSliceAttributeBytes = 64;

// scan_user_period_sums' bound on periods per call (memory: 8 bytes per stored user and
// period on SQLite), and the check of its edges (kInvalidArgument naming "edges").
inline constexpr std::size_t kMaxMetricSumPeriods = 12;
Status validate_period_edges(const std::vector<UnixSeconds>& edges);

// store.scan_user_days(user_days, ...) and store.scan_feature_days(feature_days, ...) at
// once, on two of the store's connections (a PostgreSQL server then works on two cores).
// The visits run on different threads, so they must touch disjoint state. The user days'
// error comes first when both fail.
Status scan_day_rollups_at_once(
    Store& store, const RollupQuery& user_days,
    const std::function<void(const UserDayRollup&)>& visit_user_day,
    const RollupQuery& feature_days,
    const std::function<void(const FeatureDayRollup&)>& visit_feature_day);

// Opens a store from a location: a file path (SQLite, created when absent) or a
// postgres:// / postgresql:// URL when the PostgreSQL backend is built in.
Result<std::unique_ptr<Store>> open_store(const std::string& location);

// The check exposed_user_metric applies to its windows (both backends call it).
Status check_pre_window_edges(std::span<const UnixSeconds> pre_window_edges);

}  // namespace fulcrum
