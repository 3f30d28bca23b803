"""The built-in processors of the default pipeline, one by one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import pytest
from builtin_fixtures import JSON, PLAIN, PLAIN_TAG, REDACT

from processors import shape
from processors.builtin import (
    Throttle,
    drop,
    filter_errors,
    keep,
    level_of,
    mask_secrets,
    redact_secrets,
    tag_router,
)
from processors.errors import ConfigError
from processors.pipeline import load_pipeline


@pytest.mark.parametrize("case", list(PLAIN), ids=list(PLAIN))
def test_tag_router_plain_lines(case: str) -> None:
    line = PLAIN[case]
    assert list(tag_router(line)) == [(PLAIN_TAG[case], line)]


@pytest.mark.parametrize(("line", "tag"), JSON, ids=[line for line, _ in JSON])
def test_tag_router_json_lines(line: str, tag: str) -> None:
    assert list(tag_router(line)) == [(tag, line)]


# pino and bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
NUMERIC = [(10, "debug"), (20, "debug"), (30, "info"), (40, "warn"), (50, "error"), (60, "error")]


@pytest.mark.parametrize(("number", "tag"), NUMERIC, ids=[str(n) for n, _ in NUMERIC])
def test_tag_router_numeric_json_levels(number: int, tag: str) -> None:
    line = f'{{"level":{number},"time":1764245000000,"msg":"m"}}'
    assert level_of(line) == tag
    assert list(tag_router(line)) == [(tag, line)]


@pytest.mark.parametrize("line", ["", "   ", "\t"], ids=["empty", "spaces", "tab"])
def test_tag_router_drops_blank_lines(line: str) -> None:
    assert list(tag_router(line)) == []


def test_level_is_searched_only_in_the_head_of_a_long_line() -> None:
    line = "x" * 200 + " ERROR late"
    assert level_of(line) == "info"


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("2026-11-27T12:00:00Z ERROR db timeout", True),
        ("2026-11-27T12:00:00Z CRITICAL db gone", True),
        ('{"level":"fatal"}', True),
        ('{"level":50}', True),
        ("2026-11-27T12:00:00Z WARN slow", False),
        ("2026-11-27T12:00:00Z INFO ok", False),
        ("plain", False),
    ],
)
def test_filter_errors_passes_error_lines_to_redact(line: str, kept: bool) -> None:
    assert list(filter_errors(line)) == ([("redact", line)] if kept else [])


@pytest.mark.parametrize("case", list(REDACT), ids=list(REDACT))
def test_redact_secrets(case: str) -> None:
    line, want = REDACT[case]
    assert list(redact_secrets(line)) == [("end", want)]


@pytest.mark.parametrize("case", list(REDACT), ids=list(REDACT))
def test_mask_secrets_masks_text_like_redact_secrets(case: str) -> None:
    line, want = REDACT[case]
    assert mask_secrets(line) == want


def test_redact_secrets_is_linear_on_a_hostile_long_line() -> None:
    line = "a." * 200_000 + "="
    t0 = time.perf_counter()
    assert list(redact_secrets(line)) == [("end", line)]
    assert time.perf_counter() - t0 < 5.0


@pytest.mark.parametrize(
    "fn", [tag_router, filter_errors, keep, drop, redact_secrets], ids=lambda f: f.__name__
)
def test_builtins_prove_their_output_shape(fn: Callable[[str], Iterable[tuple[str, str]]]) -> None:
    """The router runs them in its fast loops only while their code proves literal pairs."""
    assert shape.is_literal(fn, max_outputs=1)


def test_keep_and_drop() -> None:
    assert list(keep("anything")) == [("redact", "anything")]
    assert list(drop("anything")) == []


def run_within_one_second(fn: Throttle, n: int) -> list[list[tuple[str, str]]]:
    """Call `fn` n times inside one wall-clock second of its window (retried until so)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        window = int(time.monotonic())
        fn._window, fn._sent = -1, 0
        results = [fn(f"l{i}") for i in range(n)]
        if int(time.monotonic()) == window:
            return results
    raise AssertionError("could not make the calls inside one second")


def test_throttle_passes_per_second_then_drops() -> None:
    throttle = Throttle(per_second=3, to="next")
    results = run_within_one_second(throttle, 5)
    assert results == [[("next", "l0")], [("next", "l1")], [("next", "l2")], [], []]


def test_throttle_defaults_to_end() -> None:
    assert Throttle()("x") == [("end", "x")]


@pytest.mark.parametrize("per_second", [0, -1])
def test_throttle_refuses_non_positive_rate(per_second: float) -> None:
    with pytest.raises(ValueError, match="per_second"):
        Throttle(per_second=per_second)


def test_throttle_as_factory_with_options_and_name() -> None:
    pipeline = load_pipeline(
        {
            "start": "processors.builtin:tag_router",
            "warn": {
                "processor": "processors.builtin:Throttle",
                "options": {"per_second": 2},
                "name": "throttle",
            },
        }
    )
    node = pipeline.nodes["warn"]
    assert node.name == "throttle"
    assert isinstance(node.fn, Throttle) and node.fn.per_second == 2.0
    assert pipeline.names == ["tag_router", "throttle"]


def test_throttle_factory_raising_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[pipeline\] warn: .*per_second must be > 0"):
        load_pipeline(
            {
                "start": "processors.builtin:tag_router",
                "warn": {"processor": "processors.builtin:Throttle", "options": {"per_second": 0}},
            },
            where="x.toml",
        )
