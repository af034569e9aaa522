#!/usr/bin/python3
"""Reference values for the fulcrum_stats tests, computed with scipy/statsmodels.

Reads {"batches": {kind: [case, ...], ...}} as JSON on stdin and prints
{kind: [result, ...], ...} with one result object per case. Wherever scipy/statsmodels has the procedure it is called
directly (ttest_ind_from_stats, ttest_ind on CUPED-adjusted raw values,
proportions_ztest, confint_proportions_2indep, chisquare, multipletests,
NormalIndPower); formulas that no library ships (delta-method relative lift, ratio
metrics, GrowthBook's sequential interval, Gaussian posterior) are written out here
independently of the C++ code, using scipy distributions.
"""
import json
import math
import sys

import numpy as np
from scipy import optimize, special, stats


def mean_var(n, s, ss):
    mean = s / n
    return mean, (ss - s * s / n) / (n - 1)


def t_critical(alpha, df):
    """Upper alpha/2 quantile of Student t.

    scipy 1.10's t.ppf/t.isf (cephes stdtrit) is only accurate to ~1e-9 for fractional df
    (e.g. df=37.123456, upper 0.034: isf gives 1.88014707407, while t.sf and
    0.5*betainc(df/2, 1/2, df/(df+q^2)) both put the root at 1.88014708005), so the
    quantile is polished with Newton steps on scipy's accurate t.sf.
    """
    if not math.isfinite(df):
        return stats.norm.isf(alpha / 2)
    q = stats.t.isf(alpha / 2, df)
    for _ in range(3):
        q += (stats.t.sf(q, df) - alpha / 2) / stats.t.pdf(q, df)
    return q


def t_interval(estimate, se, df, alpha):
    crit = t_critical(alpha, df)
    return [estimate - crit * se, estimate + crit * se]


def t_pvalue(estimate, se, df):
    z = abs(estimate / se)
    return float(2 * (stats.t.sf(z, df) if math.isfinite(df) else stats.norm.sf(z)))


def relative(m0, v0, n0, m1, v1, n1, df, alpha):
    est = m1 / m0 - 1
    se = math.sqrt(v1 / (n1 * m0 ** 2) + m1 ** 2 * v0 / (n0 * m0 ** 4))
    return {"estimate": est, "se": se, "p_value": t_pvalue(est, se, df),
            "ci": t_interval(est, se, df, alpha)}


def welch_df(v0, n0, v1, n1):
    a, b = v0 / n0, v1 / n1
    return (a + b) ** 2 / (a * a / (n0 - 1) + b * b / (n1 - 1))


def welch(case):
    c, t, alpha = case["control"], case["treatment"], case["alpha"]
    m0, v0 = mean_var(c["n"], c["sum"], c["sum_squares"])
    m1, v1 = mean_var(t["n"], t["sum"], t["sum_squares"])
    res = stats.ttest_ind_from_stats(m1, math.sqrt(v1), t["n"], m0, math.sqrt(v0), c["n"],
                                     equal_var=False)
    df = welch_df(v0, c["n"], v1, t["n"])
    se = math.sqrt(v0 / c["n"] + v1 / t["n"])
    return {"statistic": float(res.statistic), "p_value": float(res.pvalue), "df": df,
            "ci": t_interval(m1 - m0, se, df, alpha),
            "relative": relative(m0, v0, c["n"], m1, v1, t["n"], df, alpha)}


def proportions(case):
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
    c, t, alpha = case["control"], case["treatment"], case["alpha"]
    z, p = proportions_ztest([t["sum"], c["sum"]], [t["n"], c["n"]])
    low, upp = confint_proportions_2indep(t["sum"], t["n"], c["sum"], c["n"], method="wald",
                                          compare="diff", alpha=alpha)
    p0, p1 = c["sum"] / c["n"], t["sum"] / t["n"]
    return {"statistic": float(z), "p_value": float(p), "ci": [float(low), float(upp)],
            "relative": relative(p0, p0 * (1 - p0), c["n"], p1, p1 * (1 - p1), t["n"],
                                 math.inf, alpha)}


def ratio_group(g):
    n = g["n"]
    mx, vx = mean_var(n, g["numerator_sum"], g["numerator_sum_squares"])
    my, vy = mean_var(n, g["denominator_sum"], g["denominator_sum_squares"])
    cov = (g["cross_sum"] - g["numerator_sum"] * g["denominator_sum"] / n) / (n - 1)
    # Var of mx/my by a first-order Taylor expansion, gradient (1/my, -mx/my^2).
    grad = np.array([1 / my, -mx / my ** 2])
    sigma = np.array([[vx, cov], [cov, vy]])
    return mx / my, float(grad @ sigma @ grad), n


def ratio(case):
    alpha = case["alpha"]
    r0, v0, n0 = ratio_group(case["control"])
    r1, v1, n1 = ratio_group(case["treatment"])
    df = welch_df(v0, n0, v1, n1)
    se = math.sqrt(v0 / n0 + v1 / n1)
    return {"estimate": r1 - r0, "p_value": t_pvalue(r1 - r0, se, df), "df": df,
            "ci": t_interval(r1 - r0, se, df, alpha),
            "relative": relative(r0, v0, n0, r1, v1, n1, df, alpha)}


def cuped(case):
    # Raw per-user data: adjust every value with the pooled theta, then Welch on raw values.
    pre0, post0 = np.array(case["control_pre"]), np.array(case["control_post"])
    pre1, post1 = np.array(case["treatment_pre"]), np.array(case["treatment_post"])
    pre, post = np.concatenate([pre0, pre1]), np.concatenate([post0, post1])
    theta = np.cov(pre, post)[0, 1] / np.var(pre, ddof=1)
    adj0 = post0 - theta * (pre0 - pre.mean())
    adj1 = post1 - theta * (pre1 - pre.mean())
    res = stats.ttest_ind(adj1, adj0, equal_var=False)
    n0, n1 = len(adj0), len(adj1)
    v0, v1 = np.var(adj0, ddof=1), np.var(adj1, ddof=1)
    df = welch_df(v0, n0, v1, n1)
    se = math.sqrt(v0 / n0 + v1 / n1)
    diff = adj1.mean() - adj0.mean()
    raw = stats.ttest_ind(post1, post0, equal_var=False)
    return {"theta": float(theta), "estimate": float(diff), "p_value": float(res.pvalue),
            "ci": t_interval(diff, se, df, case["alpha"]), "raw_p_value": float(raw.pvalue),
            "adjusted_means": [float(adj0.mean()), float(adj1.mean())]}


def srm(case):
    obs = np.array(case["observed"], dtype=float)
    w = np.array(case["weights"], dtype=float)
    chi2, p = stats.chisquare(obs, obs.sum() * w / w.sum())
    return {"chi_square": float(chi2), "p_value": float(p)}


def sequential_srm(case):
    # Lindon & Malek (2022), the Dirichlet-multinomial Bayes factor against theta0, written
    # out with scipy's gammaln (no library ships it).
    x = np.array(case["observed"], dtype=float)
    theta0 = np.array(case["weights"], dtype=float)
    theta0 = theta0 / theta0.sum()
    a = case["concentration"] * theta0
    log_bf = (special.gammaln(a.sum()) - special.gammaln(a.sum() + x.sum())
              + np.sum(special.gammaln(a + x) - special.gammaln(a)) - np.sum(x * np.log(theta0)))
    return {"log_bayes_factor": float(log_bf)}


def multitest(case):
    import gc
    from statsmodels.stats.multitest import multipletests
    # multipletests(method='holm') calls gc.collect() on every call (~0.1 s with scipy
    # loaded); collection changes nothing about the result.
    gc.collect = lambda *args, **kwargs: 0
    p = case["p_values"]
    return {"holm": multipletests(p, method="holm")[1].tolist(),
            "fdr_bh": multipletests(p, method="fdr_bh")[1].tolist()}


def bayes(case):
    est, se = case["estimate"], case["standard_error"]
    prec = 1 / se ** 2
    num = est * prec
    if case["proper"]:
        prec += 1 / case["prior_variance"]
        num += case["prior_mean"] / case["prior_variance"]
    mu, s = num / prec, math.sqrt(1 / prec)
    ctw = stats.norm.sf(0, loc=mu, scale=s)
    b = (0 - mu) / s
    below = stats.truncnorm.mean(-np.inf, b, loc=mu, scale=s)  # E[d | d < 0]
    above = stats.truncnorm.mean(b, np.inf, loc=mu, scale=s)   # E[d | d > 0]
    return {"posterior_mean": mu, "posterior_sd": s, "chance_to_beat_control": float(ctw),
            "expected_loss_treatment": float(-(1 - ctw) * below),
            "expected_loss_control": float(ctw * above),
            "credible_interval": [float(x) for x in stats.norm.interval(1 - case["alpha"], mu, s)]}


def sequential(case):
    est, se, n, alpha, tuning = (case["estimate"], case["standard_error"], case["total_n"],
                                 case["alpha"], case["tuning"])
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    s2 = se ** 2 * n
    width = math.sqrt(s2) * math.sqrt(2 * (n * rho ** 2 + 1) / (n * rho) ** 2 *
                                      math.log(math.sqrt(n * rho ** 2 + 1) / alpha))
    # p-value as the smallest alpha' whose sequence (same rho) excludes 0 (eq. 155).
    p = min(1.0, math.sqrt(n * rho ** 2 + 1) *
            math.exp(-(n * rho) ** 2 * est ** 2 / (2 * s2 * (n * rho ** 2 + 1))))
    return {"ci": [est - width, est + width], "p_value": p}


def fast_normal_power(d, n, alpha):
    """statsmodels normal_power (two-sided, ratio 1) with scipy.special ufuncs, which are
    ~100x cheaper per call than scipy.stats.norm inside a root finder."""
    crit = special.ndtri(1 - alpha / 2)
    shift = d * math.sqrt(n / 2)
    return special.ndtr(shift - crit) + special.ndtr(-crit - shift)


def power(case):
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize
    alpha, target = case["alpha"], case["power"]
    if case["kind"] == "proportion":
        base = case["baseline"]
        mde = base * case["mde"] if case["relative"] else case["mde"]
        es = abs(float(proportion_effectsize(base + mde, base)))
    else:
        mde = case["baseline"] * case["mde"] if case["relative"] else case["mde"]
        es = abs(mde) / case["sd"]
    engine = NormalIndPower()
    tight = dict(xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    n_exact = optimize.brentq(lambda n: fast_normal_power(es, n, alpha) - target, 1e-6, 1e12,
                              **tight)
    # The root must also be one for statsmodels' own power function.
    assert abs(engine.power(es, n_exact, alpha) - target) < 1e-12
    out = {"effect_size": es, "sample_size": n_exact,
           "sample_size_per_group": int(math.ceil(n_exact))}
    if case.get("check_solve_power"):
        out["statsmodels_solve_power"] = float(
            engine.solve_power(effect_size=es, nobs1=None, alpha=alpha, power=target))
    if "n_for_mde" in case:
        n = case["n_for_mde"]
        d = optimize.brentq(lambda d: fast_normal_power(d, n, alpha) - target, 1e-12, 50, **tight)
        assert abs(engine.power(d, n, alpha) - target) < 1e-12
        if case["kind"] == "proportion":
            base = case["baseline"]
            out["mde_for_n"] = math.sin(math.asin(math.sqrt(base)) + d / 2) ** 2 - base
        else:
            out["mde_for_n"] = d * case["sd"]
        out["effect_size_for_n"] = d
    return out


def one_sided(case):
    # scipy's own one-sided Welch test on the same sufficient statistics.
    c, t = case["control"], case["treatment"]
    m0, v0 = mean_var(c["n"], c["sum"], c["sum_squares"])
    m1, v1 = mean_var(t["n"], t["sum"], t["sum_squares"])
    out = {}
    for alternative in ("greater", "less"):
        res = stats.ttest_ind_from_stats(m1, math.sqrt(v1), t["n"], m0, math.sqrt(v0), c["n"],
                                         equal_var=False, alternative=alternative)
        out[alternative] = float(res.pvalue)
    return out


def capping(case):
    # numpy's linear percentile of the pooled values, np.minimum, then scipy's Welch test.
    c, t = np.array(case["control"]), np.array(case["treatment"])
    pooled = np.concatenate([c, t])
    if case["ignore_zeros"]:
        pooled = pooled[pooled != 0]
    cap = float(np.percentile(pooled, 100 * case["level"]))
    cc, tc = np.minimum(c, cap), np.minimum(t, cap)
    res = stats.ttest_ind(tc, cc, equal_var=False)
    return {"cap": cap, "control_sum": float(cc.sum()), "control_sum_squares": float((cc * cc).sum()),
            "treatment_sum": float(tc.sum()), "p_value": float(res.pvalue),
            "users_capped": int((c > cap).sum())}


def quantile(case):
    # np.quantile (linear) at nu and at GrowthBook's bound levels nu -/+ z sqrt(nu(1-nu)/n*).
    values, nu = np.array(case["values"]), case["level"]
    n = len(values)
    n_star = 100
    for k in range(20):
        if 100 * 2 ** k < n:
            n_star = 100 * 2 ** k
    z = stats.norm.ppf(0.975)
    se = math.sqrt(nu * (1 - nu) / n_star)
    levels = [nu, max(nu - z * se, 1e-8), min(nu + z * se, 1 - 1e-8)]
    q = np.quantile(values, levels)
    return {"n_star": n_star, "quantile": float(q[0]), "lower": float(q[1]), "upper": float(q[2])}


def bandit(case):
    # gbstats Bandits.compute_result's Monte Carlo (independent Gaussian posteriors with a flat
    # prior, best and second-best counts) with many more draws; "draws" lets the test bound
    # the Monte Carlo error.
    means, sds = [], []
    for arm in case["arms"]:
        m, v = mean_var(arm["n"], arm["sum"], arm["sum_squares"])
        means.append(m)
        sds.append(math.sqrt(v / arm["n"]))
    rng = np.random.default_rng(case["seed"])
    draws = case["draws"]
    y = rng.normal(loc=means, scale=sds, size=(draws, len(means)))
    order = np.argsort(y, axis=1)
    k = len(means)
    best = np.bincount(order[:, -1], minlength=k) / draws
    second = np.bincount(order[:, -2], minlength=k) / draws
    return {"best": best.tolist(), "top_two": ((best + second) / 2).tolist()}


def capped_cuped(case):
    # GrowthBook's capping with CUPED: the pooled percentile of the post values caps both the
    # metric and its covariate; then CUPED with the pooled theta and Welch on adjusted values.
    c_post, t_post = np.array(case["control_post"]), np.array(case["treatment_post"])
    c_pre, t_pre = np.array(case["control_pre"]), np.array(case["treatment_pre"])
    cap = float(np.percentile(np.concatenate([c_post, t_post]), 100 * case["level"]))
    out = {"cap": cap}
    for name, limit in (("capped", cap), ("uncapped", math.inf)):
        y0, y1 = np.minimum(c_post, limit), np.minimum(t_post, limit)
        x0, x1 = np.minimum(c_pre, limit), np.minimum(t_pre, limit)
        x, y = np.concatenate([x0, x1]), np.concatenate([y0, y1])
        theta = np.cov(x, y)[0, 1] / np.var(x, ddof=1)
        a0, a1 = y0 - theta * (x0 - x.mean()), y1 - theta * (x1 - x.mean())
        res = stats.ttest_ind(a1, a0, equal_var=False)
        out[name] = {"theta": float(theta), "estimate": float(a1.mean() - a0.mean()),
                     "p_value": float(res.pvalue), "means": [float(a0.mean()), float(a1.mean())]}
    return out


def cross_fit(X, y, folds, fold_count, ridge):
    """Cross-fitted ridge regression, written directly with numpy: for each fold, standardise
    the other folds' features (population sd), solve (Z'Z + ridge m I) b = Z'(y - mean y),
    predict the fold. Constant features get weight 0. Also used by
    tests/experiments/cupac_oracle.py."""
    prediction = np.zeros(len(y))
    for f in range(fold_count):
        train, test = folds != f, folds == f
        m = int(train.sum())
        mu, sd = X[train].mean(axis=0), X[train].std(axis=0)
        keep = sd > 0
        Z = (X[train][:, keep] - mu[keep]) / sd[keep]
        ybar = y[train].mean()
        beta = np.linalg.solve(Z.T @ Z + ridge * m * np.eye(keep.sum()), Z.T @ (y[train] - ybar))
        prediction[test] = ybar + ((X[test][:, keep] - mu[keep]) / sd[keep]) @ beta
    r2 = 1 - ((y - prediction) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    return prediction, float(r2)


def cupac(case):
    prediction, r2 = cross_fit(np.array(case["features"], dtype=float),
                               np.array(case["outcome"], dtype=float), np.array(case["folds"]),
                               case["fold_count"], case["ridge"])
    return {"prediction": prediction.tolist(), "r2": r2}


KINDS = {"capped_cuped": capped_cuped, "cupac": cupac, "bandit": bandit, "one_sided": one_sided, "capping": capping, "quantile": quantile, "welch": welch, "proportions": proportions, "ratio": ratio, "cuped": cuped, "srm": srm, "sequential_srm": sequential_srm,
         "multitest": multitest, "bayes": bayes, "sequential": sequential, "power": power}


def main():
    request = json.load(sys.stdin)
    results = {kind: [KINDS[kind](case) for case in cases]
               for kind, cases in request["batches"].items()}
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
