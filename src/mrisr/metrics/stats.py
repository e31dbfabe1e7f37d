"""Paired significance tests between two methods' per-slice (or per-subject) metrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mrisr.errors import ConfigError, InputError

__all__ = ["paired_slices", "paired_tests"]


def paired_tests(a: Any, b: Any, nonfinite: str = "raise") -> dict[str, Any]:
    """Compare paired metric values ``a[i]`` and ``b[i]`` (same slice or subject ``i``).

    Differences are ``d = a − b`` (scipy's ``ttest_rel(a, b)`` convention, so ``t`` has the
    sign of ``mean_diff``). Returns plain floats:

    - ``n``, ``mean_a``, ``mean_b``, ``mean_diff``, ``std_diff`` (sample SD, ddof 1);
    - ``ci95``: ``[low, high]``, the t-based 95 % confidence interval of the mean difference;
    - ``t``, ``t_p``: paired t-test (``scipy.stats.ttest_rel``, two-sided);
    - ``wilcoxon_stat``, ``wilcoxon_p``: Wilcoxon signed-rank test (``scipy.stats.wilcoxon``,
      two-sided, zero differences dropped); when every difference is zero: 0.0 and 1.0;
    - ``cohens_dz``: ``mean_diff / std_diff`` (effect size of paired data).

    When all differences are equal the t-test is degenerate: ``t`` is 0 with p 1 if they are
    all zero, else ±inf with p 0 (scipy's limit), and ``cohens_dz`` follows the same rule.

    ``nonfinite``: ``"raise"`` (default) refuses NaN/inf values (an identical slice has
    PSNR inf); ``"drop"`` leaves out the pairs holding one (``n`` counts the pairs kept and
    ``n_dropped`` the others). Raises ConfigError on different lengths or fewer than 2 pairs.
    """
    from scipy import stats

    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ConfigError(
            f"paired tests need the same number of values in both groups; got {x.size} and "
            f"{y.size} (pair them by slice or subject first)"
        )
    if nonfinite not in ("raise", "drop"):
        raise ConfigError(f"nonfinite must be 'raise' or 'drop'; got {nonfinite!r}")
    ok = np.isfinite(x) & np.isfinite(y)
    n_dropped = int((~ok).sum())
    if n_dropped and nonfinite == "raise":
        raise InputError(
            f"{n_dropped} pair(s) hold NaN or infinite values (PSNR is inf for identical "
            "images); drop those pairs or pass nonfinite='drop'"
        )
    x, y = x[ok], y[ok]
    n = int(x.size)
    if n < 2:
        raise ConfigError(f"paired tests need at least 2 pairs; got {n}")

    d = x - y
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    if sd == 0.0:  # all differences equal: scipy would warn and give nan for zero differences
        t, t_p = (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
        dz = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        res = stats.ttest_rel(x, y)
        t, t_p = float(res.statistic), float(res.pvalue)
        dz = mean / sd
    if np.all(d == 0):
        w, w_p = 0.0, 1.0
    else:
        wres = stats.wilcoxon(x, y)
        w, w_p = float(wres.statistic), float(wres.pvalue)
    out: dict[str, Any] = {
        "n": n,
        "mean_a": float(x.mean()),
        "mean_b": float(y.mean()),
        "mean_diff": mean,
        "std_diff": sd,
        "ci95": [mean - half, mean + half],
        "t": t,
        "t_p": t_p,
        "wilcoxon_stat": w,
        "wilcoxon_p": w_p,
        "cohens_dz": dz,
    }
    if nonfinite == "drop":
        out["n_dropped"] = n_dropped
    return out


def paired_slices(
    a: list[dict[str, Any]], b: list[dict[str, Any]], metrics: tuple[str, ...] = ("psnr", "ssim")
) -> dict[str, Any]:
    """:func:`paired_tests` of two results' per-slice metrics (``mrisr eval``'s ``slices``
    lists: ``{"index": i, "psnr": ..., ...}``), paired by slice index. Slices identical to the
    reference (PSNR inf) are left out; a metric with too few pairs gets ``{"n", "error"}``
    instead of failing, so that the other metrics are still reported."""
    out: dict[str, Any] = {}
    for metric in metrics:
        sa = {s["index"]: s[metric] for s in a}
        sb = {s["index"]: s[metric] for s in b}
        common = sorted(set(sa) & set(sb))
        try:
            out[metric] = paired_tests(
                np.array([sa[i] for i in common]),
                np.array([sb[i] for i in common]),
                nonfinite="drop",
            )
        except ConfigError as exc:
            out[metric] = {"n": len(common), "error": str(exc)}
    return out
