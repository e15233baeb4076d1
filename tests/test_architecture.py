"""The architecture contract: a wrong import between the rooms fails the check, by name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # Run where `tree` holds the package, so that copy (not the installed one) is read.
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tree)!r}); {LINT}"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_of_package(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "agentstream", tmp_path / "agentstream", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_repository_keeps_every_contract(tmp_path: Path) -> None:
    done = lint_imports(copy_of_package(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "rule"),
    [
        pytest.param(
            "_run.py",
            "from .cli import main as _main\n",
            "Only the tooling imports the tooling",
            id="core-imports-cli",
        ),
        pytest.param(
            "_tools.py",
            "from .testing import ScriptedModel as _Model\n",
            "Only tooling and tests import the test kit",
            id="core-imports-testing",
        ),
        pytest.param(
            "testing/_reply.py",
            "from .._events import TextDelta as _TextDelta\n",
            "use only the public core",
            id="test-kit-imports-private-core",
        ),
        pytest.param(
            "_run.py",
            "from .otel import Tracing as _Tracing\n",
            "Only users import the integrations",
            id="core-imports-otel",
        ),
        pytest.param(
            "_execute.py",
            "from opentelemetry import trace as _trace\n",
            "Only the traces integration imports OpenTelemetry",
            id="core-imports-opentelemetry",
        ),
        pytest.param(
            "otel/_tracing.py",
            "from .._run import AgentRun as _AgentRun\n",
            "use only the public core",
            id="otel-imports-private-core",
        ),
    ],
)
def test_a_wrong_import_fails_naming_the_rule(
    tmp_path: Path, module: str, line: str, rule: str
) -> None:
    tree = copy_of_package(tmp_path)
    target = tree / "agentstream" / module
    target.write_text(target.read_text() + "\n" + line)
    done = lint_imports(tree)
    assert done.returncode != 0
    assert rule in done.stdout
    assert "BROKEN" in done.stdout
