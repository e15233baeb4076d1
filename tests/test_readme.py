"""The README's code works when copied."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_first_example_runs_offline(tmp_path: Path) -> None:
    block = python_blocks()[0]
    assert "asyncio.run(main())" in block
    script = tmp_path / "first_agent.py"
    script.write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    process = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
        check=False,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert "Paris" in process.stdout
    assert "Tokyo" in process.stdout


def test_commands_in_readme_match_ci() -> None:
    ci = (README.parent / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line and not line.startswith(("#", "set "))]
    assert commands
    for command in commands:
        assert command in README.read_text()


def test_typed_output_example_runs_offline(tmp_path: Path) -> None:
    (block,) = [block for block in python_blocks() if "output_type=Booking" in block]
    script = tmp_path / "typed_output.py"
    script.write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    process = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
        check=False,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    lines = process.stdout.splitlines()
    assert lines[-1] == "Paris 3 ['Ann Smith', 'Bob Jones']"
    assert any("complete: ('city',)" in line for line in lines)
