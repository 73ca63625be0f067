"""How proxy scores are compared with whole-set scores: Spearman's rank correlation and the top k.

Spearman's rho is Pearson's correlation of the average ranks (ties share the mean of their ranks),
the definition `scipy.stats.spearmanr` uses; it is undefined (None here) when either side is
constant, where scipy returns nan.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation of two equally long score lists, or None if undefined."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"spearman needs two score lists of one length, got shapes {a.shape} and {b.shape}")
    if len(a) < 2:
        return None
    ra, rb = stats.rankdata(a), stats.rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return None if denominator == 0 else float((ra * rb).sum() / denominator)


def top_k(names: Sequence[str], scores: Sequence[float], k: int) -> list[str]:
    """The k names with the highest scores, best first; ties keep the given order (stable)."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    return [names[i] for i in order[:k]]


def percent(stats: dict | None) -> str:
    """A mean_and_std record of accuracies as 'mean +- std' in percent; '-' where it has no mean."""
    if not stats or stats.get("mean") is None:
        return "-"
    return f"{100 * stats['mean']:.2f} +- {100 * stats['std']:.2f}"


def mean_and_std(values: Sequence[float | None]) -> dict[str, float | None]:
    """{"mean", "std", "n"} over the defined values (None where none is)."""
    defined = [v for v in values if v is not None]
    if not defined:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(defined)), "std": float(np.std(defined)), "n": len(defined)}
