"""A normal install serves: the wheel, installed into a new venv and run from a folder that is
not the source tree, serves, validates its spec and runs the contract suite, all from files
it carries itself."""

from __future__ import annotations

import base64
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import httpx
import pytest

from mockserver import contract
from tests.support.processes import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built offline (this venv's setuptools, no build isolation) from a copy of what the
    build reads, so no build/ is left in the source tree and nothing stale from it is packed."""
    source = tmp_path_factory.mktemp("source")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in {"mockserver", *config["tool"].get("setuptools", {}).get("package-dir", {}).values()}:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--disable-pip-version-check", "--wheel-dir", dist, source])
    (built,) = dist.glob("m3ter_mock-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A new venv with only the wheel installed in it. Its dependencies are borrowed from this
    venv through a .pth file (installing them from an index would take minutes); a directory
    added that way does not run this venv's editable-install hook, so ``mockserver`` can only
    come from the wheel."""
    home = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", home])
    python = home / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet",
         "--disable-pip-version-check", wheel])
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # Where this process finds its dependencies (its venv, and whatever a .pth of it adds),
    # after the new venv's own site-packages; not the source tree.
    borrowed = [entry for entry in sys.path if entry and Path(entry).is_dir() and Path(entry).resolve() != ROOT]
    (purelib / "borrowed_dependencies.pth").write_text("\n".join(borrowed) + "\n", encoding="utf-8")
    return home


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_the_wheel_carries_the_specs_the_grammar_the_catalogue_and_the_contract_suite(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("mockserver/openapi/m3ter.yaml", "mockserver/openapi/admin.yaml",
                 "mockserver/domain/calculation.lark", "mockserver/domain/event_catalogue.json",
                 "mockserver/contracts/test_contract.py", "mockserver/contracts/conftest.py",
                 "mockserver/contracts/suite.py", "mockserver/contracts/policy.py",
                 "mockserver/contracts/serve.py", "mockserver/contracts/README.md"):
        assert name in names
    # pyproject.toml lists the packages one by one: a new one must not be left out.
    for init in (ROOT / "mockserver").rglob("__init__.py"):
        assert f"mockserver/{init.relative_to(ROOT / 'mockserver').as_posix()}" in names
    assert not any(name.startswith(("openapi/", "contracts/", "tests/")) for name in names)


def test_validate_needs_no_extra_and_the_contract_suite_names_its_extra(wheel):
    metadata = Parser().parsestr(zipfile.ZipFile(wheel).read(
        next(name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".dist-info/METADATA"))).decode())
    requires = metadata.get_all("Requires-Dist")
    assert any(line.startswith("openapi-spec-validator") and "extra" not in line for line in requires)
    assert "contract" in metadata.get_all("Provides-Extra")
    for name in ("pytest", "schemathesis", "hypothesis"):
        assert any(line.startswith(name) and 'extra == "contract"' in line for line in requires), name


def test_the_installed_package_is_the_one_imported(venv, elsewhere):
    code = "import mockserver.app as app; print(app.__file__); print(app.M3TER_SPEC)"
    found = run([venv / "bin" / "python", "-c", code], cwd=elsewhere).stdout.split()
    for path in found:
        assert Path(path).is_relative_to(venv), found
    assert found[1].endswith("mockserver/openapi/m3ter.yaml")


def test_serve_from_another_folder_answers_a_token_call(venv, elsewhere):
    port = free_port()
    process = subprocess.Popen([venv / "bin" / "m3ter-mock", "serve", "--port", str(port)], cwd=elsewhere,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:  # up to the line that says it is about to serve (or the end)
            lines.append(line)
            if "serving on" in line:
                break
        assert "serving on" in "".join(lines), "".join(lines) + process.stdout.read()
        wait_until_listening(port)
        basic = base64.b64encode(b"any-client:any-secret").decode()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False) as client:
            answer = client.post("/oauth/token", json={"grant_type": "client_credentials"},
                                 headers={"Authorization": f"Basic {basic}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["token_type"] == "Bearer"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_validate_from_another_folder_checks_the_shipped_spec(venv, elsewhere):
    result = subprocess.run([venv / "bin" / "m3ter-mock", "validate"], cwd=elsewhere, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{venv}/lib/" in result.stdout and "m3ter.yaml: 323 operations" in result.stdout, result.stdout


def test_the_contract_suite_runs_from_the_installed_package(venv, elsewhere):
    # One operation, in-process, a few examples: enough to show the suite loads and runs.
    env = {**os.environ, "PYTEST_ADDOPTS": "-k types"}
    result = subprocess.run([venv / "bin" / "m3ter-mock", "contract", "--target", "inprocess", "--examples", "1",
                             "--stateful-examples", "1", "--seed", "1"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    row = next(line for line in result.stdout.splitlines()
               if line.startswith("GET /organizations/{orgId}/events/types"))
    assert "ListEventTypes" in row and "PASS" in row, result.stdout
    assert (elsewhere / "m3ter-contract.xml").exists()


def test_contract_without_its_requirements_says_in_one_line_how_to_get_them(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "schemathesis" else real(name, *args))
    assert contract.main([]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == "", captured
    assert "schemathesis" in lines[0] and "pip install 'm3ter-mock[contract]'" in lines[0]
