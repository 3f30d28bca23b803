"""The embedded default pipeline against the trivial bench pipeline, on the same file.

Usage: python bench/bench_pipelines.py [--lines N] [--repeat R] [--reference]
`daemon.py --once` runs on one realistic log file (`loglines.py`: about 100-byte lines,
plain text, JSON and lines with secrets) with the bench pipeline of `procs.py`, with the
default pipeline (a config without [pipeline]), and with the default pipeline traced;
the runs alternate, R rounds. Prints every run (wall and CPU seconds of the daemon),
then the best of each as lines/s and the default's throughput as a share of the
trivial's: end to end, without start-up (the same command on an empty inbox), and by
the daemon's CPU seconds (steadier than wall time on a shared machine).
The default pipeline's outbox is checked against the built-ins run in this process.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from harness import BenchError, bench_env, daemon_cmd, exit_on_failure, install_sigterm  # noqa: E402
from loglines import MIX, write_mix  # noqa: E402
from procs import CONFIG  # noqa: E402
from report import row, runs_row  # noqa: E402

from processors.pipeline import DEFAULT_PIPELINE, load_pipeline  # noqa: E402

# label -> (config file text, extra arguments)
SETUPS = {
    "trivial": (CONFIG, []),
    "default": ("", []),
    "default --trace": ("", ["--trace"]),
}
# The default graph on the former built-ins, kept for the tests (`--reference`).
FORMER = """\
[pipeline]
start = "builtin_reference:tag_router"
error = { processor = "builtin_reference:filter_errors", retries = 2 }
warn = "builtin_reference:keep"
info = "builtin_reference:keep"
debug = "builtin_reference:drop"
redact = "builtin_reference:redact_secrets"
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(work: Path, inbox: Path, config: Path, extra: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of `daemon.py --once` on `inbox`, state and outbox emptied."""
    for d in ("outbox", "var"):
        shutil.rmtree(work / d, ignore_errors=True)
    cmd = daemon_cmd(work, config, ["--once", *extra])
    cmd[cmd.index("--inbox") + 1] = str(inbox)
    env = bench_env()
    env["PYTHONPATH"] += os.pathsep + str(ROOT / "tests")  # for builtin_reference
    cpu0, t0 = children_cpu(), time.perf_counter()
    done = subprocess.run(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if done.returncode != 0:
        raise BenchError(f"daemon --once exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return wall, cpu


def expected_output(src: Path) -> bytes:
    """What the default pipeline puts in the outbox, routed here with the built-ins."""
    nodes = load_pipeline(dict(DEFAULT_PIPELINE)).nodes
    out: list[str] = []
    with src.open(encoding="utf-8") as fh:
        for raw in fh:
            todo = [("start", raw.rstrip("\n"))]
            while todo:
                tag, text = todo.pop()
                for t, o in nodes[tag].fn(text):
                    if t == "end":
                        out.append(o + "\n")
                    else:
                        todo.append((t, o))
    return "".join(out).encode()


def report(label: str, n: int, runs: list[tuple[float, float]], empty: list[float]) -> float:
    """Print the runs of one setup; returns its best wall time without start-up."""
    wall = min(r[0] for r in runs)
    cpu = min(r[1] for r in runs)
    start = min(empty)
    runs_row(f"{label}: wall s", [r[0] for r in runs])
    runs_row(f"{label}: daemon CPU s", [r[1] for r in runs])
    runs_row(f"{label}: empty inbox s", empty)
    row(
        f"{label}: best",
        f"{n / wall:,.0f} lines/s end to end; {n / (wall - start):,.0f} lines/s "
        f"without start-up ({start:.2f} s); {cpu:.2f} s CPU",
    )
    return wall - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=HERE / "out" / "pipelines")
    ap.add_argument(
        "--reference", action="store_true", help="also the default graph on the former built-ins"
    )
    args = ap.parse_args()
    setups = dict(SETUPS)
    if args.reference:
        setups["former default"] = (FORMER, [])
    install_sigterm()
    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    inbox, empty_inbox = work / "inbox", work / "empty"
    empty_inbox.mkdir(parents=True)
    src = inbox / "app.log"
    write_mix(src, args.lines)
    configs = {}
    for label, (text, _) in setups.items():
        configs[label] = work / (label.split()[0] + ".toml")
        configs[label].write_text(text)
    shares = ", ".join(f"{share:.0%} {kind}" for kind, share in MIX)
    print(f"{args.lines:,} lines, {src.stat().st_size / 1e6:.1f} MB ({shares})")
    expected = expected_output(src)
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in setups}
    empty: dict[str, list[float]] = {label: [] for label in setups}
    for _ in range(args.repeat):
        for label, (_, extra) in setups.items():
            runs[label].append(run_once(work, inbox, configs[label], extra))
            if label != "trivial" and (work / "outbox" / "app.log").read_bytes() != expected:
                raise BenchError(f"{label}: the outbox differs from the built-ins' output")
            empty[label].append(run_once(work, empty_inbox, configs[label], extra)[0])
    net = {label: report(label, args.lines, runs[label], empty[label]) for label in setups}
    walls = {label: min(r[0] for r in runs[label]) for label in setups}
    cpus = {label: min(r[1] for r in runs[label]) for label in setups}
    for label in [label for label in setups if label != "trivial"]:
        row(
            f"{label} / trivial",
            f"{walls['trivial'] / walls[label]:.2f}x end to end, "
            f"{net['trivial'] / net[label]:.2f}x without start-up, "
            f"{cpus['trivial'] / cpus[label]:.2f}x by daemon CPU",
        )


if __name__ == "__main__":
    with exit_on_failure("bench_pipelines"):
        main()
