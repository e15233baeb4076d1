"""An integration imported without its extra says which `pip install` line brings it.

Each case runs in a child process whose import system refuses the extra's package (a
meta path finder placed first), as if it were not installed: the third-party package
is hidden from the child, nothing of it or of the SDK is patched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import sys

HIDDEN = {hidden!r}


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


for name in list(sys.modules):  # nothing of it may be loaded already
    if name.partition(".")[0] in HIDDEN:
        del sys.modules[name]
sys.meta_path.insert(0, Refuse())
try:
    import {module}
except ImportError as exc:
    print(type(exc).__name__, isinstance(exc, ImportError), exc.name)
    print(exc)
else:
    print("imported")
"""


def import_without(module: str, hidden: set[str]) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(_CHILD.format(hidden=hidden, module=module))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
        cwd=ROOT, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("module", "hidden", "extra"),
    [
        pytest.param("agentstream.web", {"starlette"}, "web", id="web"),
        pytest.param("agentstream.otel", {"opentelemetry"}, "otel", id="otel"),
        pytest.param("agentstream.dbos", {"dbos"}, "dbos", id="dbos"),
        pytest.param("agentstream.mcp", {"mcp"}, "mcp", id="mcp"),
        pytest.param("agentstream.prices", {"genai_prices"}, "prices", id="prices"),
    ],
)
def test_missing_extra_names_the_install_line(module: str, hidden: set[str], extra: str) -> None:
    done = import_without(module, hidden)
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.splitlines()
    assert kind == f"ImportError True {next(iter(hidden))}"
    assert f"pip install 'agentstream[{extra}]'" in message
    assert message.startswith(f"{module} needs the `{extra}` extra")


@pytest.mark.parametrize(
    "module",
    [
        "agentstream.web",
        "agentstream.otel",
        "agentstream.dbos",
        "agentstream.mcp",
        "agentstream.prices",
    ],
)
def test_with_the_extra_it_imports(module: str) -> None:
    done = import_without(module, {"a_package_nobody_has"})
    assert done.stdout.strip() == "imported", done.stderr


def test_the_core_and_the_stores_need_no_extra() -> None:
    hidden = {"starlette", "opentelemetry", "dbos", "mcp", "uvicorn", "fastapi"}
    for module in ("agentstream", "agentstream.stores", "agentstream.testing"):
        assert import_without(module, hidden).stdout.strip() == "imported"


def test_a_broken_extra_is_not_reported_as_a_missing_one() -> None:
    """dbos is there but one of its own dependencies is not: that error goes through as is."""
    done = import_without("agentstream.dbos", {"sqlalchemy"})
    kind, message = done.stdout.splitlines()
    assert kind == "ModuleNotFoundError True sqlalchemy"
    assert "agentstream[dbos]" not in message
