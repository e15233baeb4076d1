"""The one check: formatting, lint, strict types, the architecture, then the tests.

Run from the repository root with the dev environment's Python:
`.venv/bin/python tests/check.py [pytest arguments]`. Every step runs; the exit
status is non-zero if any failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["agentstream", "tools", "tests", "examples"]
# import-linter's command, the contracts in pyproject.toml: the arrows between the rooms.
_LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def main(pytest_args: list[str]) -> int:
    python = sys.executable
    sources = [s for s in SOURCES if (ROOT / s).exists()]
    steps = [
        ("format", [python, "-m", "ruff", "format", "--check", *sources]),
        ("lint", [python, "-m", "ruff", "check", *sources]),
        ("types", [python, "-m", "mypy"]),
        ("architecture", [python, "-c", _LINT_IMPORTS]),
        ("tests", [python, "-m", "pytest", *pytest_args]),
    ]
    failed = []
    for name, command in steps:
        print(f"==> {name}: {' '.join(command[2:])}", flush=True)
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"==> failed: {', '.join(failed)}", flush=True)
        return 1
    print("==> all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
