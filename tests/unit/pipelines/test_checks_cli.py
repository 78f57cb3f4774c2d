"""`twinops check deps`: an audit passes only when every package was checked.

pip-audit exits 0 having checked nothing when its vulnerability service does not answer
(its JSON marks each package `skip_reason`); audit_verdict turns that into a failure. The
command runs the real pip-audit against a loopback OSV stand-in (answering, or not there).
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from typer.testing import CliRunner

from pipelines.checks_cli import app, audit_verdict

CHECKED = {"name": "idna", "version": "3.10", "vulns": []}


def test_every_package_checked_and_clean_passes():
    passed, lines = audit_verdict({"dependencies": [CHECKED, {**CHECKED, "name": "six"}]})
    assert passed and lines == ["2 packages checked: no known vulnerabilities"]


def test_a_skipped_package_fails_even_without_vulnerabilities():
    report = {"dependencies": [CHECKED, {"name": "torch", "version": "2.5.0",
                                         "skip_reason": "Dependency not found on PyPI"}]}
    passed, lines = audit_verdict(report)
    assert not passed
    assert lines == ["NOT CHECKED: 1 of 2 packages (torch): Dependency not found on PyPI"]


def test_all_skipped_is_the_failure_pip_audit_calls_a_pass():
    report = {"dependencies": [{"name": f"p{i}", "version": "1", "skip_reason": "timeout"}
                               for i in range(306)]}
    passed, lines = audit_verdict(report)
    assert not passed and lines[0].startswith("NOT CHECKED: 306 of 306 packages (p0, ")
    assert audit_verdict({"dependencies": []}) == (
        False, ["NOT CHECKED: the report lists no packages"])


def test_a_vulnerability_fails_and_names_the_fix():
    report = {"dependencies": [{**CHECKED, "vulns": [{"id": "PYSEC-1", "fix_versions": ["3.11"]},
                                                     {"id": "GHSA-2", "fix_versions": []}]}]}
    passed, lines = audit_verdict(report)
    assert not passed
    assert lines == ["idna 3.10: PYSEC-1 (fixed in 3.11)",
                     "idna 3.10: GHSA-2 (fixed in no release yet)"]


@pytest.fixture
def requirements(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("idna==3.10\nsix==1.17.0\n")
    return path


@pytest.fixture
def osv_stand_in():
    """A loopback OSV query API that knows no vulnerability: `{}` for every query."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 — http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    server.shutdown()


def test_deps_passes_only_where_the_service_answered(requirements, osv_stand_in, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["deps", "-r", str(requirements), "--osv-url", osv_stand_in])
    assert ok.exit_code == 0, ok.output
    assert "2 packages checked: no known vulnerabilities" in ok.output
    # nothing listens on port 9 (discard): pip-audit cannot check a thing
    down = runner.invoke(app, ["deps", "-r", str(requirements), "--osv-url",
                               "http://127.0.0.1:9/v1/query", "--timeout", "2"])
    assert down.exit_code == 1 and "nothing was checked" in down.output
