"""A `DurableAgent` on the offline model: it runs through the model's in-process transport,
and without that transport it is refused at once with a message saying what to use (not
after seconds of DNS retries). Each case in a child process: DBOS is process-wide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "dbos_app" / "offline.py"


def run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    db = f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    return subprocess.run(
        [sys.executable, str(SCRIPT), db, mode], cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_durable_run_on_the_offline_model_through_its_transport(tmp_path: Path) -> None:
    done = run(tmp_path, "transport")
    assert done.returncode == 0, done.stderr
    stop, answer, again = done.stdout.strip().splitlines()[-3:]
    assert stop == "answer"
    assert "Paris" in answer
    assert "21" in answer
    assert again == "same"  # the workflow id's recorded result, not a second run


def test_offline_model_without_transport_is_refused_at_once(tmp_path: Path) -> None:
    done = run(tmp_path, "network")
    assert done.returncode == 0, done.stderr
    assert "refused: this agent's model is served in-process" in done.stdout
    assert "transport=model.async_transport()" in done.stdout
