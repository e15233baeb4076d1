"""The one check: formatting, lint, strict types, the architecture, the docs, then the tests.

Run from the repository root with the dev environment's Python:
`.venv/bin/python tests/check.py [pytest arguments]`. Every step runs; the exit
status is non-zero if any failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["agentstream", "tools", "tests", "examples"]
# import-linter's command, the contracts in pyproject.toml: the arrows between the rooms.
_LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
# The Material theme's notice about its successor is not a finding of the check.
_ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}


def main(pytest_args: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="agentstream-site-") as site:
        return run_steps(pytest_args, site)


def run_steps(pytest_args: list[str], site: str) -> int:
    python = sys.executable
    sources = [s for s in SOURCES if (ROOT / s).exists()]
    # The docs site is built to a temporary folder (never committed) only to check it:
    # strict mode fails on a broken link, a missing page or an unresolved API name.
    docs = [python, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", site]
    steps = [
        ("format", [python, "-m", "ruff", "format", "--check", *sources]),
        ("lint", [python, "-m", "ruff", "check", *sources]),
        ("types", [python, "-m", "mypy"]),
        ("architecture", [python, "-c", _LINT_IMPORTS]),
        ("docs", docs),
        ("tests", [python, "-m", "pytest", *pytest_args]),
    ]
    failed = []
    for name, command in steps:
        print(f"==> {name}: {' '.join(command[2:])}", flush=True)
        if subprocess.run(command, cwd=ROOT, env=_ENV, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"==> failed: {', '.join(failed)}", flush=True)
        return 1
    print("==> all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
