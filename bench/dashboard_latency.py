#!/usr/bin/env python3
"""GET /dashboard latency on a demo store, over loopback HTTP (not part of the test suite).

usage: bench/dashboard_latency.py FULCRUM_BIN [--users 50000] [--days 90] [--calls 30]
Creates the demo store (or reuses --store), starts `fulcrum serve`, times the first call
(cold: every section computed), then --calls warm calls, next to GET /healthz and
GET /ab-tests in the same run as baselines. Prints min / p50 / p95 / max in ms.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request


def timed(url, key, calls):
    times = []
    for _ in range(calls):
        request = urllib.request.Request(url, headers={"Authorization": "Bearer " + key})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:
            body = response.read()
        times.append((time.perf_counter() - started) * 1000)
    return times, body


def summary(name, times):
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    print(f"{name:32s} n={len(times):3d} min={ordered[0]:8.1f} p50={statistics.median(ordered):8.1f} "
          f"p95={p95:8.1f} max={ordered[-1]:8.1f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("fulcrum_bin")
    parser.add_argument("--users", type=int, default=50000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--store")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="dashboard-bench-")
    store = args.store or os.path.join(work, "demo.db")
    if not args.store:
        subprocess.run([args.fulcrum_bin, "--store", store, "demo", "--users", str(args.users),
                        "--days", str(args.days)], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([args.fulcrum_bin, "--store", store, "keys", "create", "--role", "admin",
                          "--label", "dashboard-bench"], check=True, capture_output=True, text=True)
    key = re.search(r"^secret:\s*(\S+)", out.stdout, re.M).group(1)
    server = subprocess.Popen([args.fulcrum_bin, "--store", store, "serve", "--address",
                               "127.0.0.1", "--port", "0", "--no-scheduler"],
                              stdout=subprocess.PIPE, text=True)
    try:
        base = None
        while base is None:
            line = server.stdout.readline()
            if not line:
                raise SystemExit("server exited")
            match = re.search(r"serving on (http://[0-9.]+:\d+)", line)
            base = match.group(1) if match else None
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        prefix = base + "/api/automated-optimization"
        cold, body = timed(prefix + "/dashboard", key, 1)
        document = json.loads(body)
        print(f"users={args.users} days={args.days} sections="
              f"{[k for k in document if isinstance(document[k], dict)]}")
        summary("GET /dashboard (cold)", cold)
        summary("GET /dashboard (warm)", timed(prefix + "/dashboard", key, args.calls)[0])
        summary("GET /ab-tests (baseline)", timed(prefix + "/ab-tests", key, args.calls)[0])
        summary("GET /healthz (baseline)", timed(base + "/healthz", key, args.calls)[0])
        print(f"document size: {len(body)} bytes")
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
