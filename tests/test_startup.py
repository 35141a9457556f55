"""Start-up shortcuts (issue 13) keep behaviour: modules the mock seldom uses are imported at
their first use (mockserver/api/startup.py's ``deferred_imports``), and ``serve`` builds the
app with the collector off, turning it back on once it listens (mockserver/cli.py)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap

from mockserver import cli
from mockserver.api.startup import DeferredModule, deferred_imports


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_app_leaves_the_seldom_used_modules_unimported():
    out = run_python("""
        import sys
        import mockserver.app
        print(sorted(m for m in ("httpx", "requests", "starlette.testclient") if m in sys.modules))
    """)
    assert out.strip() == "[]"


def test_a_deferred_module_is_the_real_one_once_read():
    out = run_python("""
        import sys
        import mockserver.app
        import connexion.security, connexion.json_schema, connexion.apps.abstract
        print(type(connexion.security.httpx).__name__)
        client_class = connexion.security.httpx.AsyncClient
        import httpx
        print(type(httpx).__name__, client_class is httpx.AsyncClient, sys.modules["httpx"] is httpx)
        print(connexion.json_schema.requests.get.__module__)
        from mockserver.app import create_app
        from mockserver.settings import Settings
        client = create_app(Settings(quiet=True)).test_client()
        print(type(client).__module__, client.get("/_mock/health").status_code)
    """)
    assert out.split("\n")[:4] == ["DeferredModule", "module True True", "requests.api",
                                   "starlette.testclient 200"]


def test_a_module_imported_within_is_executed_only_when_a_name_is_read(tmp_path, monkeypatch):
    (tmp_path / "startup_probe_module.py").write_text("import sys\nsys.startup_probe_runs = getattr(sys, 'startup_probe_runs', 0) + 1\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "startup_probe_module", raising=False)
    try:
        with deferred_imports(("startup_probe_module",)):
            import startup_probe_module as probe
        assert isinstance(probe, DeferredModule)
        assert getattr(sys, "startup_probe_runs", 0) == 0
        assert "startup_probe_module" not in sys.modules  # a later import gets the real module
        assert probe.VALUE == 42
        assert probe.VALUE == 42
        assert sys.startup_probe_runs == 1
        assert type(sys.modules["startup_probe_module"]).__name__ == "module"
    finally:
        sys.modules.pop("startup_probe_module", None)
        if hasattr(sys, "startup_probe_runs"):
            del sys.startup_probe_runs


def test_a_module_already_imported_is_left_as_it_is():
    before = sys.modules["json"]
    with deferred_imports(("json",)):
        import json
    assert json is before and sys.modules["json"] is before


def test_a_dunder_name_read_from_a_deferred_module_imports_nothing(tmp_path, monkeypatch):
    (tmp_path / "startup_probe_two.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with deferred_imports(("startup_probe_two",)):
        import startup_probe_two as probe
    assert getattr(probe, "__wrapped__", None) is None
    assert "startup_probe_two" not in sys.modules


class _ListeningServer:
    started = False

    async def startup(self, sockets=None):
        self.started = True
        self.collector_on_while_starting = gc.isenabled()


def test_serve_turns_the_collector_back_on_once_listening_with_start_up_frozen():
    gc.disable()
    try:
        server = cli.collector_back_on_when_listening(_ListeningServer, sweep_first=False)()
        asyncio.run(server.startup())
        assert server.started and server.collector_on_while_starting is False
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


def test_a_serve_that_does_not_start_leaves_the_collector_on(tmp_path, capsys):
    missing = tmp_path / "no-such-seed.yaml"
    assert gc.isenabled()
    assert cli.main(["serve", "--quiet", "--port", "1", "--seed", str(missing)]) == 2
    assert gc.isenabled()
    assert "no-such-seed.yaml" in capsys.readouterr().err
