"""The seed's print blocks, verbatim, against a live `fulcrum serve` on demo data over HTTP.

usage: run_over_http.py FULCRUM_BIN WORK_DIR
Creates a demo store, an admin key labelled "seed-contract", starts the server on a free
loopback port and gives the blocks an `optimization_service` whose methods are the HTTP
routes of api-contract.md (python3's urllib only). Exit 0 on success.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_fixture  # noqa: E402
import seed_runner  # noqa: E402

PREFIX = "/api/automated-optimization"


class HttpError(Exception):
    def __init__(self, status, problem):
        super().__init__(f"HTTP {status}: {problem}")
        self.status, self.problem = status, problem


class HttpOptimizationService:
    """The seed's service methods as calls of the HTTP contract."""

    def __init__(self, base_url, key):
        self.base_url, self.key = base_url, key

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + PREFIX + path, data=data, method=method,
                                         headers={"Authorization": "Bearer " + self.key,
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise HttpError(error.code, json.loads(error.read() or b"{}")) from None

    def create_ab_test(self, **request):
        return self.call("POST", "/ab-tests", request)["test_id"]

    def start_ab_test(self, test_id):
        return self.call("POST", f"/ab-tests/{test_id}/start")

    def analyze_ab_test_results(self, test_id):
        return self.call("GET", f"/ab-tests/{test_id}/results")

    def generate_feature_recommendations(self, user_id):
        return self.call("GET", f"/feature-recommendations/{user_id}")["recommendations"]

    def optimize_upgrade_timing(self, user_id):
        return self.call("GET", f"/upgrade-timing/{user_id}")

    def trigger_retention_campaigns(self):
        return self.call("POST", "/retention-campaigns/trigger")["retention_campaigns"]

    def analyze_feature_sunset(self):
        return self.call("GET", "/feature-sunset")


def fulcrum(bin_path, store, *args):
    return subprocess.run([bin_path, "--store", store, *args], check=True, capture_output=True,
                          text=True).stdout


def main():
    fulcrum_bin, work_dir = sys.argv[1:3]
    shutil.rmtree(work_dir, ignore_errors=True)
    os.makedirs(work_dir)
    store = os.path.join(work_dir, "seed.db")
    fulcrum(fulcrum_bin, store, "demo", "--users", "3000", "--days", "90")
    created = fulcrum(fulcrum_bin, store, "keys", "create", "--role", "admin", "--label",
                      "seed-contract")
    key = re.search(r"^secret:\s*(\S+)", created, re.M).group(1)
    server = subprocess.Popen([fulcrum_bin, "--store", store, "serve", "--address", "127.0.0.1",
                               "--port", "0",
                               "--no-scheduler"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base_url = None
        deadline = time.time() + 30
        log = ""
        while time.time() < deadline and base_url is None:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                raise RuntimeError("fulcrum serve exited: " + log)
            log += line
            match = re.search(r"serving on (http://[0-9.]+:\d+)", line)
            if match:
                base_url = match.group(1)
        assert base_url, "fulcrum serve did not announce its address: " + log
        # Keep reading the server's output so a full pipe never blocks it.
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        run(HttpOptimizationService(base_url, key))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def run(optimization_service):
    class Client:
        def create_test(self, request):
            return optimization_service.create_ab_test(**request)

        def start_test(self, test_id):
            optimization_service.start_ab_test(test_id)

        def ingest(self, events):
            optimization_service.call("POST", "/events", {"events": events})

    seed_fixture.prepare(Client())

    # created_by is the caller: the key's label.
    test = optimization_service.call("GET", "/ab-tests/test_123")
    assert test["created_by"] == "seed-contract", test
    try:
        optimization_service.create_ab_test(**dict(seed_fixture.SEED_TEST_REQUEST,
                                                   created_by="someone_else"))
        raise AssertionError("a test was created on behalf of someone else")
    except HttpError as error:
        assert error.status == 422 and error.problem.get("field") == "created_by", error

    namespace = {"optimization_service": optimization_service, "__name__": "seed_over_http"}
    outputs = {}
    for name in seed_runner.PRINT_BLOCKS:
        outputs[name] = seed_runner.run_block(name, namespace)
    seed_runner.check_printed(outputs)
    for test_id in ("test_123",) + seed_fixture.EDGE_TESTS:
        seed_fixture.check_group_analysis(optimization_service.analyze_ab_test_results(test_id))

    # The sunset figure the seed prints is the number of weekly active users.
    for analysis in optimization_service.analyze_feature_sunset():
        assert isinstance(analysis["current_usage"], int), analysis["current_usage"]
        assert analysis["current_usage"] == \
            analysis["current_usage_details"]["weekly_active_users"], analysis

    dashboard = optimization_service.call("GET", "/dashboard")
    for section in ("ab_tests", "recommendations", "upgrade_timing", "retention", "sunset"):
        assert section in dashboard and "error" not in dashboard[section], \
            (section, dashboard.get(section))
    seed_fixture.check_group_analysis(dashboard["ab_tests"]["results"]["test_123"])
    print("seed print blocks ran over HTTP: ok")


if __name__ == "__main__":
    main()
