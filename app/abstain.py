"""Decide whether the notes cover a question: its evidence against the corpus's own probe questions -> bool.

A lone cosine threshold fails: off-topic questions reach cosine 0.71-0.86 against notes, on-topic ones
0.80-0.95, and the band moves with the corpus and the embedder. So the evidence is relative twice over:
- `lift`: how far the best passage's cosine stands above the crowd of the corpus (app/fuse.py), and
- `coverage`: the share of the question's BM25 weight that the corpus's vocabulary knows,
each divided by its spread among generic probe questions that the corpus cannot answer (ingest/probes.py).
The bar is a high quantile of the probes' own evidence: a question is covered when it matches this
corpus better than nearly all of the questions it cannot answer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Chosen on the development benchmark's `tune` questions (docs/benchmarks.md).
COVERAGE_WEIGHT = 2.0
PROBE_QUANTILE = 88.0
# Floors for the spreads, so that a corpus where every probe scores alike does not divide by nothing.
MIN_LIFT_SPREAD = 0.01
MIN_COVERAGE_SPREAD = 0.05


@dataclass(frozen=True)
class Calibration:
    lift_spread: float
    coverage_spread: float
    bar: float


def evidence(lift: float, coverage: float, spreads: tuple[float, float], weight: float = COVERAGE_WEIGHT) -> float:
    """Lift and coverage, each in units of its spread among the probes."""
    return lift / spreads[0] + weight * coverage / spreads[1]


def calibrate(
    lifts: list[float], coverages: list[float], quantile: float = PROBE_QUANTILE, weight: float = COVERAGE_WEIGHT
) -> Calibration:
    """The bar is the `quantile` (percent) of the probes' evidence."""
    if not lifts:
        raise ValueError("calibration needs at least one probe question")
    spreads = (max(MIN_LIFT_SPREAD, float(np.std(lifts))), max(MIN_COVERAGE_SPREAD, float(np.std(coverages))))
    scores = [evidence(lf, cv, spreads, weight) for lf, cv in zip(lifts, coverages)]
    return Calibration(spreads[0], spreads[1], float(np.percentile(scores, quantile)))


def covered(lift: float, coverage: float, calibration: Calibration, weight: float = COVERAGE_WEIGHT) -> bool:
    spreads = (calibration.lift_spread, calibration.coverage_spread)
    return evidence(lift, coverage, spreads, weight) >= calibration.bar
