"""Setup shared by the seed-example runners: the ids the seed's code names must exist.

The seed's print blocks read test "test_123" and user "user_123". This creates them through
the caller's client (HTTP or the in-process package), with data: user_123 is a free user who
signed up 60 days ago and uses a few features; test_123 is the seed's "Feature UI Test",
started, with 600 exposed demo users per group converting at 10% (control) and 16%
(variant). Also two tests in edge states whose results must format too: one just started
(no exposures) and one with an empty group.
"""
from datetime import datetime, timedelta, timezone

SEED_TEST_REQUEST = {
    "test_name": "Feature UI Test",
    "feature_name": "account_linking",
    "description": "Testing new UI for account linking",
    "hypothesis": "New UI will improve conversion rate by 20%",
    "success_metrics": ["conversion_rate", "revenue_per_user"],
    "test_groups": {"control": {"ui": "old"}, "variant": {"ui": "new"}},
    "traffic_allocation": {"control": 0.5, "variant": 0.5},
}

EDGE_TESTS = ("test_just_started", "test_one_group_empty")


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare(client, now=None):
    """client: create_test(request) -> test_id, start_test(test_id), ingest(events)."""
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    events = [{"type": "user", "user_id": "user_123", "tier": "free",
               "signup_at": iso(now - timedelta(days=60)), "country": "GB"}]
    for day in range(1, 40, 2):
        for feature in ("account_overview", "budgets", "p2p_payments"):
            events.append({"type": "feature_usage", "user_id": "user_123", "feature": feature,
                           "at": iso(now - timedelta(days=day, hours=3))})
        events.append({"type": "session", "user_id": "user_123",
                       "at": iso(now - timedelta(days=day, hours=4)), "duration_seconds": 240})
    client.ingest(events)

    for test_id in ("test_123",) + EDGE_TESTS:
        client.create_test(dict(SEED_TEST_REQUEST, test_id=test_id,
                                start_date=iso(now)))
        client.start_test(test_id)

    exposures, conversions = [], []
    for k in range(1200):
        user = "u%06d" % k
        variant = "control" if k % 2 == 0 else "variant"
        exposed = now - timedelta(minutes=20) + timedelta(seconds=k % 600)
        exposures.append({"type": "exposure", "experiment_id": "test_123", "user_id": user,
                          "variant": variant, "at": iso(exposed)})
        rate_per_100 = 10 if variant == "control" else 16
        if (k // 2) % 100 < rate_per_100:
            conversions.append({"type": "metric", "user_id": user, "metric": "conversion_rate",
                                "value": 1, "at": iso(exposed + timedelta(seconds=30))})
    for k in range(1200, 1260):  # control only: the variant group stays empty
        exposures.append({"type": "exposure", "experiment_id": "test_one_group_empty",
                          "user_id": "u%06d" % k, "variant": "control",
                          "at": iso(now - timedelta(minutes=5))})
    # In batches of 200 records (a few tens of KB per request body).
    records = exposures + conversions
    for start in range(0, len(records), 200):
        client.ingest(records[start:start + 200])


def check_group_analysis(results):
    """The seed formats these fields with :.2%, :.3f and prints winner: numbers everywhere."""
    for name, data in results["group_analysis"].items():
        for field in ("conversion_rate", "statistical_significance", "p_value"):
            assert isinstance(data[field], (int, float)) and not isinstance(data[field], bool), \
                (results["test_id"], name, field, data[field])
        assert isinstance(data["winner"], bool), (results["test_id"], name, data["winner"])
        assert abs(data["statistical_significance"] - (1 - data["p_value"])) < 1e-12, data
