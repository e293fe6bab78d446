"""What the set-up scripts install: `make serve` (scripts/serve.sh) only the runtime packages, `make test`
(scripts/test.sh) the test extras too — and a rerun installs nothing. The scripts run on a copy of the project whose
`.venv/bin/python`, `flask`, `apt-get` and `chromium` are stand-ins that write down how they were called."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STUB = '#!/bin/sh\necho "$(basename "$0") $*" >> "$CALLS"\n'


def _stub(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STUB)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def project(tmp_path):
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("pyproject.toml", "setup.py", "scripts"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / name)
    for name in ("python", "flask"):
        _stub(copy / ".venv" / "bin" / name)
    for name in ("chromium", "zbarimg", "apt-get", "sudo"):  # never the machine's package manager
        _stub(tmp_path / "bin" / name)
    calls = tmp_path / "calls.log"
    calls.touch()
    env = {**os.environ, "CALLS": str(calls), "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    def run(script: str) -> list[str]:
        before = len(calls.read_text().splitlines())
        result = subprocess.run([str(copy / "scripts" / script)], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return calls.read_text().splitlines()[before:]

    run.path = copy
    return run


def _installs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("python -m pip install") and "--upgrade pip" not in c]


def test_serve_installs_only_the_runtime_packages(project):
    calls = project("serve.sh")
    assert _installs(calls) == ["python -m pip install -q -e ."]
    assert "flask run --host 127.0.0.1 --port 5000" in calls  # and then it serves


def test_test_adds_the_test_extras(project):
    project("serve.sh")
    calls = project("test.sh")
    assert _installs(calls) == ["python -m pip install -q -e .[test]"]
    assert any(c.startswith("python -m pytest") for c in calls)


def test_reruns_install_nothing(project):
    project("test.sh")
    assert _installs(project("test.sh")) == []
    assert _installs(project("serve.sh")) == []  # the test install includes the runtime one


def test_a_changed_pyproject_installs_again(project):
    project("serve.sh")
    with open(project.path / "pyproject.toml", "a") as handle:
        handle.write("\n# a new dependency\n")
    assert _installs(project("serve.sh")) == ["python -m pip install -q -e ."]
