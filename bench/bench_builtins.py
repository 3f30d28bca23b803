"""Micro-benchmark of the built-in processors: microseconds a line, per built-in.

Usage: python bench/bench_builtins.py [--lines N] [--repeat R] [--reference]
Each built-in is called on every line of a list and its output pairs are unpacked, the
way the router does; the figure is the best of R passes divided by the lines, in CPU
time of the process (steadier than wall time on a shared machine). Lines are
about 100 bytes (`loglines.py`): plain text, JSON, lines with a secret, and their mix.
--reference also times the former versions (tests/builtin_reference.py) for comparison.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import loglines  # noqa: E402

from processors import builtin  # noqa: E402

NAMES = ("tag_router", "filter_errors", "keep", "drop", "redact_secrets")
KINDS = ("plain", "json", "secret", "mix")
Processor = Callable[[str], Iterable[tuple[str, str]]]


def nothing(line: str) -> tuple[tuple[str, str], ...]:
    """A processor that does nothing: the cost of the call and the loop alone."""
    return ()


def per_line_us(fn: Processor, lines: list[str], repeat: int) -> float:
    """Best of `repeat` passes over `lines`, in microseconds a line."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for line in lines:
            for _tag, _out in fn(line):
                pass
        best = min(best, time.process_time() - t0)
    return best / len(lines) * 1e6


def reference() -> ModuleType:
    """The former built-ins, kept for the equivalence tests."""
    path = ROOT / "tests" / "builtin_reference.py"
    spec = importlib.util.spec_from_file_location("builtin_reference", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(title: str, module: ModuleType, corpus: dict[str, list[str]], repeat: int) -> None:
    print(f"{title} (µs of CPU a line, best of {repeat})")
    print(f"  {'':<16}" + "".join(f"{kind:>9}" for kind in KINDS))
    for name in NAMES:
        fn = getattr(module, name)
        cells = (per_line_us(fn, corpus[kind], repeat) for kind in KINDS)
        print(f"  {name:<16}" + "".join(f"{us:>9.2f}" for us in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--reference", action="store_true", help="time the former versions too")
    args = ap.parse_args()
    corpus = {kind: loglines.lines_of(kind, args.lines) for kind in KINDS}
    sizes = "  ".join(
        f"{kind} {sum(map(len, lines)) / len(lines):.0f} B" for kind, lines in corpus.items()
    )
    print(f"{args.lines:,} lines of each kind; mean length: {sizes}")
    shares = ", ".join(f"{share:.0%} {kind}" for kind, share in loglines.MIX)
    print(f"mix: {shares}")
    empty = per_line_us(nothing, corpus["mix"], args.repeat)
    print(f"an empty processor (call and loop alone): {empty:.2f} µs a line")
    table("built-ins", builtin, corpus, args.repeat)
    if args.reference:
        table("former built-ins", reference(), corpus, args.repeat)


if __name__ == "__main__":
    main()
