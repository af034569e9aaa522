#!/usr/bin/python3
"""Reference numbers for tests/experiments/results_oracle_test.cc, from the raw events.

Reads {"exposures": [[user, variant, at]], "events": {metric: [[user, value, at]]},
"countries": {user: country}, "cap_level", "quantile", "slice_top", "alpha"} on stdin and
prints what GET /ab-tests/{id}/results must report. Everything is recomputed here from the
events with numpy/scipy/statsmodels: each user's value is the sum of the metric at or after
the first exposure; the percentile cap is numpy's linear percentile of every exposed user's
value; the capped and uncapped comparisons are scipy's Welch test; the binomial metric is
statsmodels' proportions_ztest; the p90 metric follows gbstats' QuantileStatistic (numpy
quantiles at nu and nu -/+ z sqrt(nu (1 - nu) / n*)) with the delta-method difference; Holm
is statsmodels' multipletests.
"""
import json
import math
import sys

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest


def welch_df(v0, n0, v1, n1):
    a, b = v0 / n0, v1 / n1
    return (a + b) ** 2 / (a * a / (n0 - 1) + b * b / (n1 - 1))


def welch(control, variant, alpha):
    control, variant = np.asarray(control), np.asarray(variant)
    res = stats.ttest_ind(variant, control, equal_var=False)
    v0, v1 = control.var(ddof=1), variant.var(ddof=1)
    n0, n1 = len(control), len(variant)
    df = welch_df(v0, n0, v1, n1)
    diff = variant.mean() - control.mean()
    se = math.sqrt(v0 / n0 + v1 / n1)
    crit = stats.t.isf(alpha / 2, df)
    return {"control_mean": float(control.mean()), "variant_mean": float(variant.mean()),
            "estimate": float(diff), "ci": [float(diff - crit * se), float(diff + crit * se)],
            "p_value": float(res.pvalue), "n": [n0, n1]}


def gb_quantile(values, nu):
    values = np.asarray(values)
    n = len(values)
    n_star = 100
    for k in range(20):
        if 100 * 2 ** k < n:
            n_star = 100 * 2 ** k
    z = stats.norm.ppf(0.975)
    se = math.sqrt(nu * (1 - nu) / n_star)
    q, lower, upper = np.quantile(values, [nu, max(nu - z * se, 1e-8), min(nu + z * se, 1 - 1e-8)])
    variance = (n_star / n) * (n - 1) * ((upper - lower) / (2 * z)) ** 2
    if n >= 100:
        variance = max(variance, 1e-5)
    return float(q), float(variance), n


def quantile_test(control, variant, nu, alpha):
    m0, v0, n0 = gb_quantile(control, nu)
    m1, v1, n1 = gb_quantile(variant, nu)
    df = welch_df(v0, n0, v1, n1)
    diff = m1 - m0
    se = math.sqrt(v0 / n0 + v1 / n1)
    crit = stats.t.isf(alpha / 2, df)
    p = 2 * stats.t.sf(abs(diff / se), df)
    rel = m1 / m0 - 1
    rel_se = math.sqrt(v1 / (n1 * m0 ** 2) + m1 ** 2 * v0 / (n0 * m0 ** 4))
    return {"control_mean": m0, "variant_mean": m1, "control_variance": v0,
            "variant_variance": v1, "estimate": diff,
            "ci": [diff - crit * se, diff + crit * se], "p_value": float(p),
            "relative": rel, "relative_ci": [rel - crit * rel_se, rel + crit * rel_se]}


def main():
    request = json.load(sys.stdin)
    alpha = request["alpha"]
    first = {}
    for user, variant, at in request["exposures"]:
        if user not in first or at < first[user][1]:
            first[user] = (variant, at)
    users = sorted(first)
    per_user = {}
    for metric, events in request["events"].items():
        totals = {u: 0.0 for u in users}
        for user, value, at in events:
            if user in first and at >= first[user][1]:
                totals[user] += value
        per_user[metric] = totals
    by_variant = lambda metric, variant, subset=None: [
        per_user[metric][u] for u in users
        if first[u][0] == variant and (subset is None or u in subset)]

    out = {}
    revenue_all = np.array([per_user["revenue"][u] for u in users])
    cap = float(np.percentile(revenue_all, 100 * request["cap_level"]))
    out["cap"] = cap
    rc, rv = np.array(by_variant("revenue", "control")), np.array(by_variant("revenue", "variant"))
    out["users_capped"] = {"control": int((rc > cap).sum()), "variant": int((rv > cap).sum())}
    out["revenue_capped"] = welch(np.minimum(rc, cap), np.minimum(rv, cap), alpha)
    out["revenue_uncapped"] = welch(rc, rv, alpha)

    cc = np.array(by_variant("conversion_rate", "control")) > 0
    cv = np.array(by_variant("conversion_rate", "variant")) > 0
    _, p_conversion = proportions_ztest([cv.sum(), cc.sum()], [len(cv), len(cc)])
    out["conversion"] = {"control_rate": float(cc.mean()), "variant_rate": float(cv.mean()),
                         "p_value": float(p_conversion)}

    out["latency"] = quantile_test(by_variant("load_time_p90", "control"),
                                   by_variant("load_time_p90", "variant"),
                                   request["quantile"], alpha)

    family = [out["revenue_capped"]["p_value"], out["conversion"]["p_value"],
              out["latency"]["p_value"]]
    out["holm"] = [float(p) for p in multipletests(family, method="holm")[1]]

    # Slices of the capped primary metric by country: top values by exposed users (ties by
    # name), the rest merged; Holm across the slices.
    countries = {u: request["countries"].get(u, "") for u in users}
    counts = {}
    for u in users:
        counts[countries[u]] = counts.get(countries[u], 0) + 1
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    top = ranked[:request["slice_top"]]
    rows = [(c, False, {u for u in users if countries[u] == c}) for c in top]
    rest = {u for u in users if countries[u] not in top}
    if rest:
        rows.append(("other", True, rest))
    slices = []
    for value, other, members in rows:
        control = np.minimum(by_variant("revenue", "control", members), cap)
        variant = np.minimum(by_variant("revenue", "variant", members), cap)
        result = welch(control, variant, alpha)
        slices.append({"value": value, "other": other, "users": len(members),
                       "control_mean": result["control_mean"], "p_value": result["p_value"]})
    adjusted = multipletests([s["p_value"] for s in slices], method="holm")[1]
    for s, p in zip(slices, adjusted):
        s["adjusted_p_value"] = float(p)
    out["slices"] = slices

    # Post-stratification of the capped primary metric by country, every country a stratum,
    # written from gbstats' formulas (EffectMomentsPostStratification, PostStratificationSummary):
    # a country where a group has < 2 users or no variance joins the largest country first.
    def cell(members):
        a = np.minimum(by_variant("revenue", "control", members), cap)
        b = np.minimum(by_variant("revenue", "variant", members), cap)
        return a, b
    def viable(a, b):
        return len(a) > 1 and len(b) > 1 and np.var(a, ddof=1) > 0 and np.var(b, ddof=1) > 0
    strata = [cell({u for u in users if countries[u] == c}) for c in sorted(counts)]
    strata = sorted(strata, key=lambda ab: -(len(ab[0]) + len(ab[1])))  # stable, as C++
    used, merged = [strata[0]], 0
    for a, b in strata[1:]:
        if viable(a, b):
            used.append((a, b))
        else:
            used[0] = (np.concatenate([used[0][0], a]), np.concatenate([used[0][1], b]))
            merged += 1
    total = sum(len(a) + len(b) for a, b in used)
    nu = np.array([(len(a) + len(b)) / total for a, b in used])
    alpha_matrix = np.array([[a.mean(), b.mean() - a.mean()] for a, b in used]).T  # 2 x K
    within = np.zeros((2, 2))
    for k, (a, b) in enumerate(used):
        n = len(a) + len(b)
        va = np.var(a, ddof=1) * n / len(a)
        vb = np.var(b, ddof=1) * n / len(b)
        within += nu[k] * np.array([[va, -va], [-va, va + vb]])
    multinomial = np.diag(nu) - np.outer(nu, nu)
    cov = (alpha_matrix @ multinomial @ alpha_matrix.T + within) / total
    mean = alpha_matrix @ nu
    out["post_stratified"] = {"strata_used": len(used), "strata_merged": merged,
                              "estimate": float(mean[1]), "se": float(np.sqrt(cov[1, 1]))}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
