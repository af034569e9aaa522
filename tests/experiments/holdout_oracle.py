#!/usr/bin/python3
"""Independent oracle for GET /holdouts/{id}/impact (tests/experiments/holdout_test.cc).

Reads {"users": [{id, signup_at, attributes}], "events": [[user, metric, value, at]],
"holdouts": [{holdout_id, seed, percent, hash_attribute, started_at, end, metrics}],
"alpha"} on stdin and prints, per holdout, the monthly and cumulative comparison of the
general population against the holdout, recomputed from the raw events:

- membership: GrowthBook's hash version 2 (FNV-1a 32 over UTF-16 code units, twice),
  written here from the SDK spec, held out when the bucket < percent / 100; users without
  the hash attribute are in neither group;
- periods: calendar months (UTC) from the start, the first starting at the start, the last
  ending at `end`; a user counts in a period when they signed up before its end;
- per-user value: the sum of the metric's events in the month (or since the start);
  binomial metrics use 1 when that sum is positive;
- binomial: statsmodels proportions_ztest (pooled) for the p-value, the Wald unpooled
  interval, the relative difference by the delta method with the normal quantile;
- continuous: scipy ttest_ind_from_stats(equal_var=False) for the p-value, the Welch-
  Satterthwaite df for the interval, the relative difference by the delta method (Deng et
  al. 2018) with the same df.
"""
import datetime
import json
import math
import sys
from collections import defaultdict

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest


def fnv1a32(text):
    h = 0x811C9DC5
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def bucket_v2(seed, value):
    return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000


def month_edges(start, end):
    edges = [start]
    while edges[-1] < end:
        t = datetime.datetime.fromtimestamp(edges[-1], tz=datetime.timezone.utc)
        year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
        nxt = int(datetime.datetime(year, month, 1, tzinfo=datetime.timezone.utc).timestamp())
        edges.append(min(nxt, end))
    return edges


def effect(estimate, se, df, alpha):
    q = stats.norm.ppf(1 - alpha / 2) if math.isinf(df) else stats.t.ppf(1 - alpha / 2, df)
    if math.isinf(df):
        p = 2 * stats.norm.sf(abs(estimate / se)) if se > 0 else (1.0 if estimate == 0 else 0.0)
    else:
        p = 2 * stats.t.sf(abs(estimate / se), df) if se > 0 else (1.0 if estimate == 0 else 0.0)
    return {"estimate": estimate, "standard_error": se, "ci_lower": estimate - q * se,
            "ci_upper": estimate + q * se, "p_value": min(1.0, p)}


def compare(holdout_values, general_values, binomial, alpha):
    x0 = np.asarray(holdout_values, dtype=float)
    x1 = np.asarray(general_values, dtype=float)
    n0, n1 = len(x0), len(x1)
    out = {"holdout": {"users": n0, "sum": float(x0.sum()),
                       "mean": float(x0.mean()) if n0 else None},
           "general": {"users": n1, "sum": float(x1.sum()),
                       "mean": float(x1.mean()) if n1 else None}}
    if binomial:
        if n0 < 1 or n1 < 1:
            return out
        m0, m1 = x0.mean(), x1.mean()
        v0, v1 = m0 * (1 - m0), m1 * (1 - m1)
        df = math.inf
    else:
        if n0 < 2 or n1 < 2:
            return out
        m0, m1 = x0.mean(), x1.mean()
        v0, v1 = x0.var(ddof=1), x1.var(ddof=1)
        a0, a1 = v0 / n0, v1 / n1
        denominator = a0 ** 2 / (n0 - 1) + a1 ** 2 / (n1 - 1)
        # Both groups constant: no Welch df; the pooled df (the value is then irrelevant).
        df = (a0 + a1) ** 2 / denominator if denominator > 0 else n0 + n1 - 2
    absolute = effect(m1 - m0, math.sqrt(v0 / n0 + v1 / n1), df, alpha)
    if binomial:
        if 0 < x0.sum() + x1.sum() < n0 + n1:
            _, absolute["p_value"] = proportions_ztest([x1.sum(), x0.sum()], [n1, n0])
    elif absolute["standard_error"] > 0:
        absolute["p_value"] = stats.ttest_ind_from_stats(
            m1, math.sqrt(v1), n1, m0, math.sqrt(v0), n0, equal_var=False).pvalue
    out["absolute"] = absolute
    if m0 != 0:
        variance = v1 / (n1 * m0 ** 2) + m1 ** 2 * v0 / (n0 * m0 ** 4)
        out["relative"] = effect(m1 / m0 - 1, math.sqrt(variance), df, alpha)
    return out


def main():
    request = json.load(sys.stdin)
    alpha = request["alpha"]
    sums = defaultdict(lambda: defaultdict(list))  # metric -> user -> [(at, value)]
    for user, metric, value, at in request["events"]:
        sums[metric][user].append((at, value))
    result = {}
    for h in request["holdouts"]:
        edges = month_edges(h["started_at"], h["end"])
        groups = {}
        for u in request["users"]:
            attrs = dict(u["attributes"])
            attrs["id"] = u["id"]
            value = attrs.get(h["hash_attribute"])
            if value in (None, ""):
                continue
            groups[u["id"]] = bucket_v2(h["seed"], str(value)) < h["percent"] / 100
        signups = {u["id"]: u["signup_at"] for u in request["users"]}
        periods = []
        for month in range(len(edges) - 1):
            lo, hi = edges[month], edges[month + 1]
            members = [uid for uid in groups if signups[uid] < hi]
            period = {"holdout_users": sum(1 for uid in members if groups[uid]),
                      "general_users": sum(1 for uid in members if not groups[uid]),
                      "monthly": {}, "cumulative": {}}
            for metric, kind in h["metrics"].items():
                binomial = kind == "binomial"
                for label, start in (("monthly", lo), ("cumulative", edges[0])):
                    held, general = [], []
                    for uid in members:
                        total = sum(v for at, v in sums[metric].get(uid, ()) if start <= at < hi)
                        value = (1.0 if total > 0 else 0.0) if binomial else total
                        (held if groups[uid] else general).append(value)
                    period[label][metric] = compare(held, general, binomial, alpha)
            periods.append(period)
        result[h["holdout_id"]] = {"periods": periods}
    json.dump(result, sys.stdout, allow_nan=False)


if __name__ == "__main__":
    main()
