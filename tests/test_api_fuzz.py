"""Property-based fuzzing of every API endpoint from the app's own OpenAPI schema.

Each operation is called with generated parameters on a real uvicorn server over a
populated Telemetry and a real SQLite database; no answer may be a server error, and with
a token every data endpoint answers 401 (never 500) to a request without it. The
schemathesis command line then runs every check it has (`--checks all`: status codes,
content types and response bodies against their schemas, negative data rejected, auth
honoured...) and must find nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_fixtures import (  # noqa: F401
    insert_rows,
    install_sinks,
    make_context,
    make_db,
    no_thread_leak,
    populated_telemetry,
    serving,
)

from store.live.telemetry import Telemetry

schemathesis: Any = pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (pip install schemathesis)"
)
hypothesis: Any = pytest.importorskip("hypothesis")

TOKEN = "fuzz-token"
MAX_EXAMPLES = 50
OPEN_PATHS = {"/health"}
# An endless stream has no body to check: /tap has tests of its own (test_tap.py).
STREAMING_PATHS = {"/tap"}
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def with_sinks() -> Telemetry:
    """The populated telemetry with three sinks, one failing, so /sinks has rows."""
    telemetry = populated_telemetry()
    install_sinks(telemetry)
    return telemetry


def populate(tmp_path: Path) -> None:
    db_path = tmp_path / "inboxd.db"
    make_db(db_path)
    insert_rows(
        db_path,
        "metrics",
        [
            {"ts": 1000.0 + i, "processor": p, "count": i, "time": 0.1, "errors": 0, "retries": 0}
            for i in range(20)
            for p in ("tag_router", "keep")
        ],
    )
    insert_rows(
        db_path,
        "errors",
        [{"ts": 1000.0, "processor": "keep", "message": "E: x", "file": "a", "line_no": 1}],
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "inboxd.log").write_text('{"msg": "hello"}\n' * 5)


def fuzz(
    base_url: str,
    raw: dict[str, Any],
    check: Any,
    *,
    headers: dict[str, str] | None = None,
    max_examples: int = MAX_EXAMPLES,
) -> int:
    """Call every operation of the OpenAPI document `raw` on `base_url`; calls made."""
    schema = schemathesis.openapi.from_dict(raw)
    settings = hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in STREAMING_PATHS:
            continue

        def call(case: Any, path: str = operation.path) -> None:
            nonlocal calls
            response = case.call(base_url=base_url, headers=headers or {})
            calls += 1
            check(path, response)

        run = settings(hypothesis.given(case=operation.as_strategy())(lambda case: call(case)))
        run()
    return calls


def no_server_error(path: str, response: Any) -> None:
    assert response.status_code < 500, (path, response.status_code, response.text[:300])


def openapi(base_url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/openapi.json", headers=headers or {})
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def test_no_endpoint_answers_a_server_error(tmp_path: Path) -> None:
    populate(tmp_path)
    with serving(make_context(tmp_path, telemetry=with_sinks())) as url:
        calls = fuzz(url, openapi(url), no_server_error)
    assert calls > 0


def test_with_a_token_every_data_endpoint_answers_401_not_500(tmp_path: Path) -> None:
    populate(tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def unauthorized(path: str, response: Any) -> None:
        no_server_error(path, response)
        if path not in OPEN_PATHS:
            assert response.status_code == 401, (path, response.status_code)

    with serving(make_context(tmp_path, telemetry=with_sinks(), token=TOKEN)) as url:
        assert httpx.get(f"{url}/openapi.json").status_code == 401
        raw = openapi(url, auth)
        refused = fuzz(url, raw, unauthorized, max_examples=5)
        served = fuzz(url, raw, no_server_error, headers=auth, max_examples=10)
    assert refused > 0
    assert served > 0


def test_rebinding_host_is_refused_on_loopback_without_token(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        port = url.rsplit(":", 1)[1]
        for host in ("evil.example", "evil.example:" + port, "127.0.0.1.evil.example"):
            response = httpx.get(f"{url}/stats", headers={"Host": host})
            assert response.status_code == 403, host
        for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}", "[::1]:80"):
            assert httpx.get(f"{url}/stats", headers={"Host": host}).status_code == 200, host
    with serving(make_context(tmp_path, host="inboxd.lan")) as url:
        assert httpx.get(f"{url}/health", headers={"Host": "inboxd.lan:8000"}).status_code == 200
    with serving(make_context(tmp_path, token=TOKEN)) as url:
        auth = {"Authorization": f"Bearer {TOKEN}", "Host": "anything.example"}
        assert httpx.get(f"{url}/stats", headers=auth).status_code == 200


def schemathesis_cli(url: str, cwd: Path, *extra: str) -> str:
    """`schemathesis run --checks all` on the server at `url`; its output, exit 0 asserted.

    Run from `cwd` (a temporary folder): the command keeps a `.schemathesis` folder there.
    """
    if not SCHEMATHESIS.exists():
        pytest.skip("the schemathesis command is not installed beside this Python")
    result = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{url}/openapi.json", "--checks", "all",
         "--exclude-path", "/tap", "--max-examples", "25", "--request-timeout", "10",
         "--seed", "1", "--no-color", *extra],
        capture_output=True, text=True, timeout=500, cwd=cwd,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result.stdout


def cases_passed(output: str) -> int:
    match = re.search(r"(\d+) generated, (\d+) passed", output)
    assert match, output[-2000:]
    assert match.group(1) == match.group(2), match.group(0)
    return int(match.group(2))


def test_schemathesis_finds_nothing_with_every_check(tmp_path: Path) -> None:
    populate(tmp_path)
    with serving(make_context(tmp_path, telemetry=with_sinks())) as url:
        output = schemathesis_cli(url, tmp_path)
    assert cases_passed(output) > 200
    assert "Tested: 13" in output or "Tested:" in output


def test_schemathesis_finds_nothing_with_a_token(tmp_path: Path) -> None:
    populate(tmp_path)
    with serving(make_context(tmp_path, telemetry=with_sinks(), token=TOKEN)) as url:
        output = schemathesis_cli(url, tmp_path, "--header", f"Authorization: Bearer {TOKEN}")
    assert cases_passed(output) > 200


def test_every_operation_documents_a_response_schema(tmp_path: Path) -> None:
    with serving(make_context(tmp_path)) as url:
        doc = openapi(url)
    for path, item in doc["paths"].items():
        ok = item["get"]["responses"]["200"]
        content = ok["content"]
        assert content, path
        for media, body in content.items():
            assert body["schema"], (path, media)
            if media == "application/json":
                assert body["schema"] != {}, path
    assert list(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    log_codes = set(doc["paths"]["/logs/{name}"]["get"]["responses"])
    assert {"200", "400", "404", "422"} <= log_codes
