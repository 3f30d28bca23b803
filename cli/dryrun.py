"""`inboxd check`'s dry run: the `[[test]]` inputs routed as `inboxd test` routes them.

Nothing is written (no outbox, no state, no sink): the run only records which tags the
processors emitted that nothing handles (those lines are dead-lettered as UnknownTag at
run time), which tags the tests' expectations name that nothing handles, and which
processors fed `end` and each sink. User code may raise (the router turns that into
error records) or never return: the run has a time budget and is abandoned, reported,
when it is spent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from cli.config import fresh_router
from cli.pipetest import TEST_FILE, PipelineTest
from cli.settings import Settings
from processors.errors import ConfigError
from processors.pipeline import END
from processors.router import Routed

DRY_RUN_S = 5.0


@dataclass(frozen=True)
class TestSeen:
    """What one test's dry run showed."""

    test: str
    # (tag, processor) for every branch dead-lettered at a tag nothing handles.
    unknown: list[tuple[str, str]]
    # (sink or `end`, processor) for every branch that reached one.
    fed: list[tuple[str, str]]


@dataclass
class DryRun:
    handled: frozenset[str] = frozenset()
    seen: list[TestSeen] = field(default_factory=list)
    # Why part of the run did not happen (a pipeline that did not load, the budget).
    problems: list[str] = field(default_factory=list)

    def feeders(self, name: str) -> list[str]:
        """The processors whose lines reached `name` (a sink or `end`), first seen first."""
        found = (p for s in self.seen for sink, p in s.fed if sink == name)
        return list(dict.fromkeys(found))


@dataclass
class _Progress:
    test: str = ""
    processor: str = ""
    seen: list[TestSeen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    done: bool = False


def handled_tags(settings: Settings, tags: Iterable[str]) -> frozenset[str]:
    """Every tag a line may carry without being dead-lettered as UnknownTag."""
    return frozenset([*tags, END, *settings.sink_names])


def summarize(
    test: str, routed: Routed, names: dict[str, str], handled: frozenset[str]
) -> TestSeen:
    unknown = [(d.tag, d.processor) for d in routed.deadletters if d.tag not in handled]
    fed: list[tuple[str, str]] = []
    for record in routed.traces.records() if routed.traces else []:
        path = record.path
        if len(path) >= 2 and path[-1] in handled and path[-1] not in names:
            fed.append((path[-1], names.get(path[-2], path[-2])))
    return TestSeen(test, unknown, fed)


def _work(settings: Settings, tests: list[PipelineTest], progress: _Progress) -> None:
    try:
        for test in tests:
            progress.test, progress.processor = test.name, ""
            try:
                router = fresh_router(settings)
            except ConfigError as exc:
                progress.problems.append(f"test {test.name!r} not dry-run: {exc}")
                continue
            router.on_wave = lambda name: setattr(progress, "processor", name)
            routed = router.route(list(test.input), TEST_FILE, 1)
            names = {tag: node.name for tag, node in router.pipeline.nodes.items()}
            handled = handled_tags(settings, names)
            progress.seen.append(summarize(test.name, routed, names, handled))
    except BaseException as exc:  # user code may raise SystemExit and the like
        what = f"{type(exc).__name__}: {exc}"
        progress.problems.append(f"dry run stopped in test {progress.test!r}: {what}")
    finally:
        progress.done = True


def dry_run(
    settings: Settings, tags: Iterable[str], tests: list[PipelineTest], budget: float = DRY_RUN_S
) -> DryRun:
    """Route every test's input in a thread; give up on it after `budget` seconds."""
    progress = _Progress()
    thread = threading.Thread(
        target=_work, args=(settings, tests, progress), name="inboxd-check-dry-run", daemon=True
    )
    thread.start()
    thread.join(budget)
    seen, problems = list(progress.seen), list(progress.problems)
    if not progress.done:
        where = f" in processor {progress.processor}" if progress.processor else ""
        problems.append(
            f"dry run stopped after {budget:g} s in test {progress.test!r}{where},"
            " which had not returned; the tests after it were not dry-run"
        )
    return DryRun(handled_tags(settings, tags), seen, problems)


def unhandled_warnings(run: DryRun, tests: list[PipelineTest]) -> list[str]:
    """One line per tag that nothing handles, with who emitted or named it and where."""
    emitters: dict[str, dict[str, list[str]]] = {}
    for seen in run.seen:
        for tag, processor in seen.unknown:
            where = emitters.setdefault(tag, {}).setdefault(processor, [])
            if seen.test not in where:
                where.append(seen.test)
    named: dict[str, list[str]] = {}
    for test in tests:
        for tag in (t for path in test.traces or [] for t in path):
            if tag not in run.handled and test.name not in named.setdefault(tag, []):
                named[tag].append(test.name)
    lines = []
    for tag in dict.fromkeys([*emitters, *named]):
        parts = []
        if tag in emitters:
            by = ", ".join(f"{p} (in {_tests(t)})" for p, t in emitters[tag].items())
            parts.append(f"emitted by {by}")
        if tag in named:
            parts.append(f"named in the traces of {_tests(named[tag])}")
        lines.append(
            f"tag {tag!r} is {' and '.join(parts)} but no processor or sink handles it;"
            " such lines are dead-lettered as UnknownTag"
        )
    return lines


def _tests(names: list[str]) -> str:
    quoted = ", ".join(repr(n) for n in names)
    return f"test {quoted}" if len(names) == 1 else f"tests {quoted}"


__all__ = ["DRY_RUN_S", "DryRun", "dry_run", "unhandled_warnings"]
