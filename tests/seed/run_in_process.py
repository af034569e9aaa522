"""The seed's "Basic Usage" and every print block, verbatim, in-process through the Python
package `fulcrum` on a demo store (only the constructor's arguments differ).

usage: run_in_process.py FULCRUM_BIN PYTHON_PACKAGE_DIR WORK_DIR
Creates a demo store with FULCRUM_BIN, imports fulcrum from PYTHON_PACKAGE_DIR, and makes the
seed's import line work unchanged: backend/analytics/automated_optimization.py (in WORK_DIR)
re-exports fulcrum.AutomatedOptimization, as the bank's backend would. Exit 0 on success.
"""
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_fixture  # noqa: E402
import seed_runner  # noqa: E402

SEED_CONSTRUCTOR = "AutomatedOptimization(db_session, access_control_service, audit_service)"


def main():
    fulcrum_bin, package_dir, work_dir = sys.argv[1:4]
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    store = os.path.join(work_dir, "seed.db")
    subprocess.run([fulcrum_bin, "--store", store, "demo", "--users", "3000", "--days", "90"],
                   check=True, stdout=subprocess.DEVNULL)

    sys.path.insert(0, package_dir)
    import fulcrum

    # The bank's backend module path, re-exporting the package.
    module_dir = os.path.join(work_dir, "backend", "analytics")
    os.makedirs(module_dir)
    for package in (os.path.join(work_dir, "backend"), module_dir):
        open(os.path.join(package, "__init__.py"), "w").close()
    with open(os.path.join(module_dir, "automated_optimization.py"), "w") as f:
        f.write("from fulcrum import AutomatedOptimization  # noqa: F401\n")
    sys.path.insert(0, work_dir)

    basic = seed_runner.read_block("basic_usage.py")
    assert basic.count(SEED_CONSTRUCTOR) == 1, "the seed's constructor line changed"
    basic = basic.replace(SEED_CONSTRUCTOR,
                          f"AutomatedOptimization(store={store!r}, actor='seed_contract_test')")

    # Setup: the ids the seed's code names (test_123, user_123), through the package.
    service = fulcrum.AutomatedOptimization(store=store, actor="seed_setup")

    class Client:
        def create_test(self, request):
            return service.create_ab_test(**request)

        def start_test(self, test_id):
            service.start_ab_test(test_id)

        def ingest(self, events):
            service.ingest_events(events)

    seed_fixture.prepare(Client())

    namespace = {"datetime": datetime, "__name__": "seed_basic_usage"}
    seed_runner.run_block("basic_usage.py", namespace, basic)
    optimization_service = namespace["optimization_service"]
    assert isinstance(namespace["test_id"], str) and namespace["test_id"], namespace["test_id"]
    created = optimization_service.get_ab_test(namespace["test_id"])
    assert created["created_by"] == "admin_user", created  # the seed's created_by argument
    assert created["status"] == "draft", created
    assert isinstance(namespace["recommendations"], list)
    assert namespace["timing"]["user_id"] == "user_123"
    assert isinstance(namespace["campaigns"], list) and namespace["campaigns"]
    assert len(namespace["sunset_analyses"]) == 20

    outputs = {}
    for name in seed_runner.PRINT_BLOCKS:
        outputs[name] = seed_runner.run_block(name, namespace)
    # Basic Usage already triggered the campaigns; the print block's second run finds the
    # same users cooling down (30 days), so it may print none.
    seed_runner.check_printed(outputs, expect_new_campaigns=False)
    for test_id in ("test_123",) + seed_fixture.EDGE_TESTS:
        seed_fixture.check_group_analysis(optimization_service.analyze_ab_test_results(test_id))

    check_results_options(fulcrum, optimization_service)
    check_errors(fulcrum, optimization_service)
    check_audit(fulcrum_bin, store, namespace["test_id"])
    check_gil_released(optimization_service)
    check_dashboard(optimization_service)
    print("seed examples ran in-process: ok")


def check_results_options(fulcrum, service):
    """The results route's options as keyword arguments: a slice table and CUPAC beside CUPED
    on the demo's onboarding test (revenue capped at its 99th percentile)."""
    demo_test = "exp_onboarding_checklist"
    results = service.analyze_ab_test_results(demo_test, slice="tier", cupac=True)
    assert results["slices"]["attribute"] == "tier" and results["slices"]["rows"], results["slices"]
    reports = results["cupac"]["metrics"]
    assert [r["metric"] for r in reports] == ["conversion_rate", "revenue_per_user"], reports
    revenue = reports[1]
    assert "unavailable" not in revenue and revenue["users"] > 100, revenue
    assert revenue["capped_at"] == results["metrics"][1]["capping"]["cap"], revenue
    treatment = revenue["treatments"][0]
    for method in ("unadjusted", "cuped", "cupac"):
        assert treatment[method]["standard_error"] > 0, treatment
    try:
        service.analyze_ab_test_results(demo_test, slice="a b")
        raise AssertionError("a bad slice attribute was accepted")
    except fulcrum.ValidationError as error:
        assert error.field == "slice", error.field


def check_errors(fulcrum, service):
    try:
        service.create_ab_test(test_name="x", feature_name="y", success_metrics=["m"],
                               test_groups={"control": {}, "variant": {}},
                               traffic_allocation={"control": 0.7, "variant": 0.7})
        raise AssertionError("an allocation over 1 was accepted")
    except fulcrum.ValidationError as error:
        assert error.field.startswith("traffic_allocation"), error.field
        assert error.status == 422 and isinstance(error, ValueError), (error.status, error)
    try:
        service.analyze_ab_test_results("no_such_test")
        raise AssertionError("an unknown test was found")
    except fulcrum.NotFoundError as error:
        assert error.status == 404 and isinstance(error, LookupError)
    try:
        service.start_ab_test("test_123")  # already active
        raise AssertionError("an active test was started again")
    except fulcrum.ConflictError as error:
        assert error.status == 409, error.status
    try:
        service.create_ab_test(test_name="x", feature_name="y", success_metrics=["m"],
                               test_groups={"control": {}, "variant": {}},
                               traffic_allocation={"control": 0.5, "variant": 0.5},
                               start_date=object())
        raise AssertionError("an object was accepted as a date")
    except fulcrum.ValidationError as error:
        assert error.field == "start_date", error.field


def check_audit(fulcrum_bin, store, test_id):
    """The package's calls are in the audit log as the HTTP layer writes them."""
    import sqlite3
    rows = sqlite3.connect(store).execute(
        "SELECT actor, action, target, outcome FROM audit_log ORDER BY sequence").fetchall()
    entries = set(rows)
    assert ("seed_contract_test", "POST /ab-tests", test_id, "ok") in entries, rows
    assert ("seed_setup", "POST /ab-tests/{test_id}/start", "test_123", "ok") in entries, rows
    assert ("seed_contract_test", "GET /feature-recommendations/{user_id}", "user:user_123",
            "ok") in entries, rows
    assert ("seed_contract_test", "GET /upgrade-timing/{user_id}", "user:user_123",
            "ok") in entries, rows
    assert any(r[0] == "seed_contract_test" and r[1] == "POST /retention-campaigns/trigger"
               and r[3] == "ok" for r in rows), rows
    assert ("seed_contract_test", "POST /ab-tests", "", "error: 422") in entries, rows
    assert ("seed_contract_test", "POST /ab-tests/{test_id}/start", "test_123",
            "error: 409") in entries, rows
    verified = subprocess.run([fulcrum_bin, "--store", store, "audit", "verify"],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def check_gil_released(service):
    """A long computation (the sunset analysis) lets other Python threads run meanwhile."""
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    started = time.perf_counter()
    service.analyze_feature_sunset()
    finished = time.perf_counter()
    stop.set()
    thread.join()
    during = [t for t in ticks if started < t < finished]
    # Holding the GIL for the whole call would leave no tick inside it.
    assert finished - started < 0.02 or len(during) >= 3, (finished - started, len(during))


def check_dashboard(service):
    document = service.get_dashboard()
    for section in ("ab_tests", "recommendations", "upgrade_timing", "retention", "sunset"):
        assert section in document and "error" not in document[section], (section, document.get(section))
    results = document["ab_tests"]["results"]["test_123"]
    seed_fixture.check_group_analysis(results)


if __name__ == "__main__":
    main()
