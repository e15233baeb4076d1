"""A regular (non-editable) install: the demo tools ship inside the package.

The wheel is built from this checkout and unpacked beside an unrelated top-level `tools`
package of another distribution; the demo must use its own tools and never import that one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FOREIGN_TOOLS = """\
from pathlib import Path
Path(__file__).with_name("IMPORTED").write_text("another distribution's tools ran")
ALL_TOOLS = ()
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("agentstream-*.whl")
    return built


def test_the_wheel_holds_the_demo_tools_under_the_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "agentstream/_demo_tools/__init__.py" in names
    assert "agentstream/_demo_tools/calculator.py" in names
    assert not any(name.startswith("tools/") for name in names)


def test_the_installed_demo_uses_its_own_tools_only(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    foreign = tmp_path / "foreign"
    (foreign / "tools").mkdir(parents=True)
    (foreign / "tools" / "__init__.py").write_text(FOREIGN_TOOLS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    # The unpacked wheel and the foreign package come before this checkout on the path.
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(foreign)])
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "agentstream", "--json", "-p", "What is 17 * 23?"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["type"] == "run_started"
    assert "calculate" in events[0]["tools"]
    finished = [e for e in events if e["type"] == "tool_finished"]
    assert finished
    assert json.loads(finished[0]["output"])["result"] == 391
    assert not (foreign / "tools" / "IMPORTED").exists()
    where = subprocess.run(
        [sys.executable, "-c", "import agentstream; print(agentstream.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(site))
