"""One poison policy for both ways of routing: a line that keeps killing what routes it
(the daemon, routing in its own thread; a worker process) is dead-lettered after
`poison_after` deaths with one dead letter of one wording, naming who died."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cli.settings import Settings
from store.records import DeadLetter
from watcher.reading.poison import (
    DAEMON,
    WORKER,
    InFlightLog,
    PoisonGuard,
    PoisonPolicy,
    Suspect,
    poison_message,
)
from watcher.reading.routing import Routing
from watcher.workers.pool import WorkerPool, worker_spec

DEADLY = """\
import os

def route(line):
    if line == "POISON":
        os._exit(70)
    return [("end", line)]
"""
LINES = ["first", "POISON", "last"]


def route(lines: list[str], file: str, first: int) -> Routing:
    assert "POISON" not in lines, "the poison line is never routed again"
    return list(lines), [], {}


def same_letter(letter: DeadLetter) -> tuple[object, ...]:
    """What both paths must agree on (the time differs, the processor is who ran)."""
    return (letter.file, letter.line_no, letter.tag, letter.line)


def test_the_policy_counts_deaths_and_decides() -> None:
    policy = PoisonPolicy(2, WORKER)
    assert policy.died("a.log", 7) == 1 and not policy.is_poison(policy.deaths("a.log", 7))
    assert policy.died("a.log", 7) == 2 and policy.is_poison(policy.deaths("a.log", 7))
    assert policy.deaths("a.log", 8) == 0
    policy.keep = lambda text: None  # keep_lines = "none"
    letter = policy.quarantine("a.log", 7, "secret", "", 2)
    assert letter.message == "Poison: a worker stopped 2 times on this line"
    assert (letter.processor, letter.line) == ("?", "")
    assert policy.deaths("a.log", 7) == 0, "its count is forgotten once quarantined"


def test_in_process_and_workers_quarantine_with_one_policy(tmp_path: Path) -> None:
    # In process: the daemon died twice on line 2 (the suspect read back at start-up).
    guard = PoisonGuard(InFlightLog(tmp_path / "var"), Suspect(1, 2, 2, 2, 2, "deadly"), 2)
    try:
        out, dead, _ = guard.route(route, (1, 2), LINES, "app.log", 1)
    finally:
        guard.close()
    assert out == ["first", "last"]
    [daemon_letter] = dead
    # In a worker: the same line kills it twice, counted by the pool.
    (tmp_path / "deadly.py").write_text(DEADLY)
    spec = worker_spec(Settings(pipeline={"start": "deadly:route"}))
    router = dataclasses.replace(spec.router, config=str(tmp_path / "c.toml"))
    spec = dataclasses.replace(spec, router=router)
    pool = WorkerPool(spec, 1, poison_after=2, stall_timeout=30.0)
    pool.start()
    try:
        data = "\n".join(LINES).encode()
        result = pool.collect(pool.submit(data, "app.log", 1, len(LINES)))
    finally:
        pool.stop()
        pool.join()
    assert result.out == b"first\nlast\n"
    [worker_letter] = result.deadletters
    assert isinstance(pool.policy, PoisonPolicy) and isinstance(guard.policy, PoisonPolicy)
    assert daemon_letter.message == poison_message(DAEMON, 2)
    assert worker_letter.message == poison_message(WORKER, 2)
    assert same_letter(daemon_letter) == same_letter(worker_letter) == ("app.log", 2, "start",
                                                                        "POISON")  # fmt: skip
