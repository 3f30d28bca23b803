"""deploy/prometheus/alerts.yml: valid rules, each unit-tested by `promtool test rules`, and
every inboxd metric they use exported by /metrics."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from web_fixtures import (  # noqa: F401
    install_sinks,
    make_context,
    no_thread_leak,
    populated_telemetry,
    serving,
)

RULES_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULES_TEST = RULES_DIR / "alerts.test.yml"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def alert_names(text: str) -> set[str]:
    return set(re.findall(r"^\s*- alert: (\w+)", text, re.M))


@needs_promtool
def test_rules_are_valid() -> None:
    assert "SUCCESS" in promtool("check", "rules", RULES.name)


@needs_promtool
def test_every_alert_passes_its_promtool_unit_test() -> None:
    assert "SUCCESS" in promtool("test", "rules", RULES_TEST.name)


FIRING_CASE = re.compile(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels")


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tested = set(FIRING_CASE.findall(RULES_TEST.read_text()))
    assert alert_names(RULES.read_text()) == tested
    required = {"InboxdDown", "InboxdEngineStalled", "InboxdEngineFailing", "InboxdErrorRateHigh",
                "InboxdDeadLettersGrowing", "InboxdLagGrowing", "InboxdFlushFailing",
                "InboxdSinkFailing"}  # fmt: skip
    assert required <= tested


def test_metrics_used_by_the_alerts_are_exported(tmp_path: Path) -> None:
    used = set(re.findall(r"\binboxd_[a-z_]+", RULES.read_text()))
    telemetry = populated_telemetry()
    install_sinks(telemetry)  # the sink families exist only when sinks are configured
    with serving(make_context(tmp_path, telemetry=telemetry, inbox="/srv/inbox")) as url:
        exposition = httpx.get(f"{url}/metrics").text
    exported = set(re.findall(r"^# TYPE (inboxd_[a-z_]+)", exposition, re.M))
    exported |= {f"{name}_total" for name in exported}
    assert "inboxd_sink_errors_total" in used
    assert used <= exported, used - exported
