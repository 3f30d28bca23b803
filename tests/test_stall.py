"""StallWatch: the stall threshold, exactly, on a clock the test drives."""

from __future__ import annotations

from processors.current import CurrentCall
from store.live.health import FAILING, OK
from store.live.telemetry import Telemetry
from watcher.stall import StallWatch

TIMEOUT = 30.0
START = 1000.0
# Short of the threshold by less than any plausible mutation of it.
EPSILON = 1e-6


def call(line_no: int) -> CurrentCall:
    """The engine inside processor `slow` on line `line_no` of app.log."""
    return CurrentCall("slow", "app.log", line_no, (1, 2, line_no))


class Clock:
    """Time as the test says it is; StallWatch is handed `now` on every sample."""

    def __init__(self, start: float) -> None:
        self.now = start

    def at(self, seconds_after_start: float) -> float:
        self.now = START + seconds_after_start
        return self.now


def test_not_stalled_just_before_the_timeout_and_stalled_at_it() -> None:
    watch = StallWatch(TIMEOUT)
    clock = Clock(START)
    stuck_on = call(7)
    assert watch.check(clock.at(0.0), stuck_on, beat=START, idle=False) == 0.0
    assert watch.check(clock.at(TIMEOUT - EPSILON), stuck_on, beat=START, idle=False) == 0.0
    assert watch.check(clock.at(TIMEOUT), stuck_on, beat=START, idle=False) == TIMEOUT
    assert watch.check(clock.at(TIMEOUT + 5.0), stuck_on, beat=START, idle=False) == TIMEOUT + 5.0


def test_a_new_call_resets_the_threshold() -> None:
    watch = StallWatch(TIMEOUT)
    clock = Clock(START)
    watch.check(clock.at(0.0), call(1), beat=START, idle=False)
    # Progress 20 s in: the next line.
    assert watch.check(clock.at(20.0), call(2), beat=START, idle=False) == 0.0
    assert watch.check(clock.at(TIMEOUT), call(2), beat=START, idle=False) == 0.0
    assert watch.check(clock.at(20.0 + TIMEOUT - EPSILON), call(2), beat=START, idle=False) == 0.0
    assert watch.check(clock.at(20.0 + TIMEOUT), call(2), beat=START, idle=False) == TIMEOUT


def test_a_heartbeat_of_the_engine_loop_resets_the_threshold() -> None:
    watch = StallWatch(TIMEOUT)
    clock = Clock(START)
    beat = START + 10.0
    watch.check(clock.at(0.0), None, beat=START, idle=False)
    assert watch.check(clock.at(TIMEOUT), None, beat=beat, idle=False) == 0.0
    assert watch.check(clock.at(10.0 + TIMEOUT - EPSILON), None, beat=beat, idle=False) == 0.0
    assert watch.check(clock.at(10.0 + TIMEOUT), None, beat=beat, idle=False) == TIMEOUT


def test_idle_is_never_a_stall() -> None:
    watch = StallWatch(TIMEOUT)
    clock = Clock(START)
    watch.check(clock.at(0.0), None, beat=START, idle=True)
    assert watch.check(clock.at(10 * TIMEOUT), None, beat=START, idle=True) == 0.0


def test_verdict_turns_health_failing_at_the_threshold_and_back_on_progress() -> None:
    watch = StallWatch(TIMEOUT)
    telemetry = Telemetry()
    clock = Clock(START)
    watch.verdict(clock.at(0.0), call(7), START, False, telemetry)
    watch.verdict(clock.at(TIMEOUT - EPSILON), call(7), START, False, telemetry)
    assert telemetry.health.status_of("engine") == OK
    assert not watch.stalled
    assert watch.verdict(clock.at(TIMEOUT), call(7), START, False, telemetry) == TIMEOUT
    engine = telemetry.health.snapshot()["engine"]
    assert engine["status"] == FAILING
    assert (engine["processor"], engine["file"], engine["line_no"]) == ("slow", "app.log", 7)
    assert engine["seconds"] == TIMEOUT
    assert telemetry.counters()["engine_stalled_seconds"] == TIMEOUT
    assert watch.stalled
    # The line returns: the next call is progress.
    assert watch.verdict(clock.at(TIMEOUT + 1.0), call(8), START, False, telemetry) == 0.0
    assert telemetry.health.status_of("engine") == OK
    assert telemetry.counters()["engine_stalled_seconds"] == 0.0
    assert not watch.stalled
