#!/usr/bin/python3
"""Reference numbers for ResultsOracleTest.CupacAndCappedCupedMatchNumpy, from the raw events.

Reads {"exposures": [[user, variant, at]], "revenue": [[user, value, at]], "sessions": [[user,
at, duration]], "payments": [[user, at, succeeded, amount_minor]], "usage": [[user, at,
count]], "paywall_hits": [[user, at]], "cap_level", "alpha"} and prints what GET
/ab-tests/{id}/results?cupac=true must report, recomputed here with numpy/scipy only:
each user's revenue after first exposure capped at numpy's pooled percentile; the metric's
sums over the 0-7, 7-14, 14-28 and 28-56 days before exposure; the user's activity on the 28
UTC days before the exposure day straight from the events; a ridge regression cross-fitted
on 5 folds (FNV-1a 64 of "cupac:" + user id); CUPED with the pooled theta and scipy's Welch
test on the adjusted values, both with the prediction and with the capped 14-day pre-period
value (which is also what the capped metric's own CUPED uses).
"""
import json
import math
import os
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stats"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from oracle import cross_fit  # noqa: E402  (the same numpy ridge the stats oracle uses)

DAY = 86400
EDGES = [0, 7 * DAY, 14 * DAY, 28 * DAY, 56 * DAY]


def fold_of(user, folds=5):
    h = 0xcbf29ce484222325
    for byte in ("cupac:" + user).encode():
        h ^= byte
        h = (h * 0x100000001b3) % (1 << 64)
    return h % folds


def cuped(x0, y0, x1, y1, alpha):
    x, y = np.concatenate([x0, x1]), np.concatenate([y0, y1])
    theta = np.cov(x, y)[0, 1] / np.var(x, ddof=1)
    a0, a1 = y0 - theta * (x0 - x.mean()), y1 - theta * (x1 - x.mean())
    return welch(a0, a1, alpha) | {"theta": float(theta), "means": [float(a0.mean()), float(a1.mean())]}


def welch(a0, a1, alpha):
    v0, v1, n0, n1 = a0.var(ddof=1), a1.var(ddof=1), len(a0), len(a1)
    se = math.sqrt(v0 / n0 + v1 / n1)
    res = stats.ttest_ind(a1, a0, equal_var=False)
    return {"estimate": float(a1.mean() - a0.mean()), "se": se, "p_value": float(res.pvalue)}


def main():
    r = json.load(sys.stdin)
    first = {}
    for user, variant, at in r["exposures"]:
        if user not in first or at < first[user][1]:
            first[user] = (variant, at)
    users = sorted(first)
    index = {u: i for i, u in enumerate(users)}
    n = len(users)
    post = np.zeros(n)
    windows = np.zeros((n, 4))
    for user, value, at in r["revenue"]:
        if user not in index:
            continue
        i, f = index[user], first[user][1]
        if at >= f:
            post[i] += value
            continue
        before = f - at
        for w in range(4):
            if EDGES[w] < before <= EDGES[w + 1]:
                windows[i, w] += value
    # Activity on the 28 UTC days before the exposure day, from the events themselves.
    activity = np.zeros((n, 8))  # active days, sessions, minutes, uses, paywall, ok, failed, paid
    active = [set() for _ in range(n)]
    def in_window(user, at):
        if user not in index:
            return None
        day, exposure_day = at // DAY, first[user][1] // DAY
        return index[user] if exposure_day - 28 <= day < exposure_day else None
    for user, at, duration in r["sessions"]:
        i = in_window(user, at)
        if i is not None:
            activity[i, 1] += 1
            activity[i, 2] += duration / 60.0
            active[i].add(at // DAY)
    for user, at, count in r["usage"]:
        i = in_window(user, at)
        if i is not None:
            activity[i, 3] += count
            active[i].add(at // DAY)
    for user, at in r["paywall_hits"]:
        i = in_window(user, at)
        if i is not None:
            activity[i, 4] += 1
            active[i].add(at // DAY)
    for user, at, succeeded, amount in r["payments"]:
        i = in_window(user, at)
        if i is not None:
            if succeeded:
                activity[i, 5] += 1
                activity[i, 7] += amount / 100.0
            else:
                activity[i, 6] += 1
            active[i].add(at // DAY)
    activity[:, 0] = [len(days) for days in active]
    features = np.hstack([windows, activity])

    cap = float(np.percentile(post, 100 * r["cap_level"]))
    outcome = np.minimum(post, cap)
    pre14 = np.minimum(windows[:, 0] + windows[:, 1], cap)
    folds = np.array([fold_of(u) for u in users])
    prediction, r2 = cross_fit(features, outcome, folds, 5, 1e-3)
    control = np.array([first[u][0] == "control" for u in users])
    variant = ~control
    alpha = r["alpha"]
    plain = welch(outcome[control], outcome[variant], alpha)
    with_pre = cuped(pre14[control], outcome[control], pre14[variant], outcome[variant], alpha)
    with_prediction = cuped(prediction[control], outcome[control], prediction[variant],
                            outcome[variant], alpha)
    json.dump({"cap": cap, "users": n, "r2": r2, "plain": plain, "cuped": with_pre,
               "cupac": with_prediction,
               "cuped_reduction": 1 - (with_pre["se"] / plain["se"]) ** 2,
               "cupac_reduction": 1 - (with_prediction["se"] / plain["se"]) ** 2}, sys.stdout)


if __name__ == "__main__":
    main()
