"""What a server needs sent back survives a durable run: DBOS records each model request's
whole response and replays it through the assembler, so the next request of a
`DurableAgent` carries the reasoning fields, `reasoning_details` blocks and a call's
`extra_content` exactly as the plain agent does (tests/test_roundtrip.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ._roundtrip import _SHARED, CASES, ROUNDTRIP, Missing, resolve

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "dbos_app" / "roundtrip.py"
CHOSEN = [
    "gemini__docs-openai-compat-thought-signature.jsonl",
    "vercel-gateway__fantasy-claude-sonnet4-thinking-signature.jsonl",
    "deepseek__chatlas-v4flash-tool-reasoning_content.jsonl",
    "crusoe__pydantic-ai-glm52-reasoning-field-tool.jsonl",
]


def _path(file: str) -> Path:
    path = ROUNDTRIP / file
    return path if path.is_file() or _SHARED is None else _SHARED / file


@pytest.mark.parametrize("file", CHOSEN)
def test_a_durable_run_sends_back_what_the_server_needs(tmp_path: Path, file: str) -> None:
    case = CASES[file.removesuffix(".jsonl")]
    db = f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), db, str(_path(file))], cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "same"  # the recorded workflow result, no second model request
    bodies = [
        json.loads(line.removeprefix("request ")) for line in lines if line.startswith("request ")
    ]
    assert len(bodies) == 2
    for path in case["must_carry"]:
        want = case.get("expected", {}).get(path)
        got = resolve(bodies[1], path)
        if want is not None:
            assert got == want, path
        else:
            assert got in case["expected_any"][path], path
    for path in case.get("must_not_carry", []):
        with pytest.raises(Missing):
            resolve(bodies[1], path)
