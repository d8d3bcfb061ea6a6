"""Summaries shared by every benchmark: percentiles and the JSON result line."""

import json
import math
import sys
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(samples: Sequence[float]) -> dict[str, float | int]:
    return {
        "samples": len(samples),
        "p50": round(percentile(samples, 50), 4),
        "p99": round(percentile(samples, 99), 4),
        "max": round(max(samples), 4),
    }


def emit(benchmark: str, params: dict[str, Any], unit: str, samples: Sequence[float], **extra: Any) -> None:
    """Print one result line: parameters, unit, sample count, p50, p99, max."""
    line = {"benchmark": benchmark, **params, "unit": unit, **summarize(samples), **extra}
    print(json.dumps(line), flush=True)
    sys.stdout.flush()
