"""The architecture contract: a wrong import between the rooms fails the check, by name."""

from __future__ import annotations

import ast
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
            "loop/_run.py",
            "from ..cli import main as _main\n",
            "Only the tooling imports the tooling",
            id="core-imports-cli",
        ),
        pytest.param(
            "tools/_tool.py",
            "from ..testing import ScriptedModel as _Model\n",
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
            "loop/_run.py",
            "from ..otel import Tracing as _Tracing\n",
            "Only users import the integrations",
            id="core-imports-otel",
        ),
        pytest.param(
            "loop/_execute.py",
            "from opentelemetry import trace as _trace\n",
            "Only the traces integration imports OpenTelemetry",
            id="core-imports-opentelemetry",
        ),
        pytest.param(
            "otel/_tracing.py",
            "from ..loop._run import AgentRun as _AgentRun\n",
            "use only the public core",
            id="otel-imports-private-core",
        ),
        pytest.param(
            "wire/chat/_assemble.py",
            "from ...loop._step_state import StepState as _StepState\n",
            "The engine's rooms in layers",
            id="wire-imports-loop",
        ),
        pytest.param(
            "wire/responses/_request.py",
            "from ...tools._tool import Tool as _Tool\n",
            "The engine's rooms in layers",
            id="wire-imports-tools",
        ),
        pytest.param(
            "state/_state.py",
            "from ..wire._message import AssembledMessage as _Message\n",
            "The engine's rooms in layers",
            id="state-imports-wire",
        ),
        pytest.param(
            "loop/_send.py",
            "from .._agent import Agent as _Agent\n",
            "The engine's rooms in layers",
            id="loop-imports-agent",
        ),
        pytest.param(
            "output/_spec.py",
            "from ..loop._config import RunConfig as _RunConfig\n",
            "The engine's rooms in layers",
            id="output-imports-loop",
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


# --- the rooms themselves: no circle of imports between the engine's files, small parts

PACKAGE = ROOT / "agentstream"
# Rooms beside the engine: the tooling and the integrations, built on the public core.
BESIDE = {"cli", "bench", "testing", "web", "mcp", "otel", "dbos", "stores", "prices"}
ROOT_MODULES_AT_MOST = 14
FUNCTION_LINES_AT_MOST = 90
MODULE_LINES_AT_MOST = 550


def engine_files() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in BESIDE and path.name != "__main__.py"
    ]


def file_of(parts: list[str]) -> Path | None:
    """The file `import agentstream.<parts>` runs first: the module, or a package's __init__."""
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """The package's files `path` imports, those under `if TYPE_CHECKING:` included."""
    here = list(path.relative_to(PACKAGE).parts[:-1])
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "agentstream":
                module = node.module.split(".")[1:]
            else:
                continue
            targets = [module] + [[*module, alias.name] for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [
                alias.name.split(".")[1:]
                for alias in node.names
                if alias.name.split(".")[0] == "agentstream"
            ]
        else:
            continue
        found.update(f for f in map(file_of, targets) if f is not None and f != path)
    return found


def test_no_import_circle_between_the_engines_files() -> None:
    files = engine_files()
    graph = {path: imported_files(path) & set(files) for path in files}
    done: set[Path] = set()

    def visit(path: Path, trail: list[Path]) -> None:
        if path in trail:
            circle = [*trail[trail.index(path) :], path]
            pytest.fail(
                "import circle: " + " -> ".join(str(p.relative_to(PACKAGE)) for p in circle)
            )
        if path in done:
            return
        for target in sorted(graph[path]):
            visit(target, [*trail, path])
        done.add(path)

    for path in files:
        visit(path, [])


def test_the_engines_parts_live_in_rooms() -> None:
    at_root = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(at_root) <= ROOT_MODULES_AT_MOST, sorted(at_root)
    for room in {p.parent for p in engine_files()} - {PACKAGE}:
        docstring = ast.get_docstring(ast.parse((room / "__init__.py").read_text()))
        assert docstring, f"{room.relative_to(PACKAGE)}/__init__.py says what the room owns"


def test_no_long_module_or_function() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > MODULE_LINES_AT_MOST:
            long.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > FUNCTION_LINES_AT_MOST:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.name}: {size} lines")
    assert not long, long
