"""How the benchmarks print their figures: aligned rows, rates, percentiles."""

from __future__ import annotations

from collections.abc import Sequence

WIDTH = 34


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def row(label: str, value: str) -> None:
    print(f"  {label + ':':<{WIDTH}} {value}")


def best_row(label: str, lines: int, times: Sequence[float]) -> None:
    """The fastest of `times` as a rate of `lines`."""
    row(label, rate(lines, min(times)) + f"  best of {len(times)}")


def cpu_row(label: str, base: Sequence[float], other: Sequence[float]) -> None:
    """Daemon CPU seconds of both configurations (best of) and their difference."""
    b, o = min(base), min(other)
    row(label, f"{b:.2f} s vs {o:.2f} s: {(o - b) / b * 100:+.1f} %")


def runs_row(label: str, times: Sequence[float]) -> None:
    row(label, " ".join(f"{t:.2f}" for t in times))


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} lines/s  ({seconds:.2f} s)" if seconds > 0 else "n/a"
