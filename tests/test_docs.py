"""The documentation's code works when copied: every Python block in README.md and docs/.

Each ```python block is a whole program. It runs in a child process from an empty folder
that holds the repository's `examples/` and `tools/` (as a checkout does), with no
`OPENAI_*` variable, so it talks to the offline or scripted model. A block that truly
cannot run here says so in its visible title, ```python title="Not run: REASON"```; such
blocks are skipped with their reason and counted, and there must stay few of them.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
# A fence at any indent (blocks inside list items), its info string, and its body.
_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S
)
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')
_NOT_RUN = "Not run: "
# Fences the docs may use; anything else (`py`, `python3`, ...) would escape the run.
_LANGUAGES = {"python", "text", "console", "sh", "json", "jsx", "html", "toml", "yaml"}
MAX_NOT_RUN = 3
# The integrations and kits with a reference page of their own, docs/reference/NAME.md.
REFERENCE_PAGES = ["dbos", "mcp", "otel", "prices", "stores", "testing", "web"]


@dataclass(frozen=True)
class Block:
    page: Path
    number: int  # the page's n-th Python block, from 1
    line: int
    info: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.number}"

    @property
    def not_run(self) -> str | None:
        """The reason the block is not run, from its title, or None."""
        match = _TITLE.search(self.info)
        if match and match["title"].startswith(_NOT_RUN):
            return match["title"].removeprefix(_NOT_RUN)
        return None


def fences(page: Path) -> list[tuple[int, str, str]]:
    """(line, info string, dedented body) of every fenced block of a page."""
    text = page.read_text()
    found = []
    for match in _FENCE.finditer(text):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        found.append((text.count("\n", 0, match.start()) + 1, match["info"].strip(), body))
    return found


def _language(info: str) -> str:
    return info.split()[0] if info.split() else ""


def python_blocks(page: Path) -> list[Block]:
    blocks = [
        (line, info, body) for line, info, body in fences(page) if _language(info) == "python"
    ]
    return [Block(page, n, line, info, body) for n, (line, info, body) in enumerate(blocks, 1)]


ALL_BLOCKS = [block for page in PAGES for block in python_blocks(page)]


def run_block(code: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run a block as a script from `folder`, as a reader would from a checkout."""
    for name in ("examples", "tools"):
        link = folder / name
        if not link.exists():
            link.symlink_to(ROOT / name, target_is_directory=True)
    script = folder / "block.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=180,
        env=env, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in ALL_BLOCKS])
def test_block_runs(block: Block, tmp_path: Path) -> None:
    if block.not_run is not None:
        pytest.skip(f"{block.id} (line {block.line}): {block.not_run}")
    done = run_block(block.code, tmp_path)
    assert done.returncode == 0, f"{block.id} (line {block.line}):\n{done.stderr}"


def test_blocks_not_run_are_few_and_say_why() -> None:
    not_run = [block for block in ALL_BLOCKS if block.not_run is not None]
    assert all(block.not_run for block in not_run)  # a reason after "Not run: "
    assert len(not_run) <= MAX_NOT_RUN, [block.id for block in not_run]


def test_every_page_has_blocks_to_run() -> None:
    assert len(ALL_BLOCKS) >= 15
    assert {block.page for block in ALL_BLOCKS} >= {README, ROOT / "docs" / "getting-started.md"}


@pytest.mark.parametrize("page", [pytest.param(p, id=str(p.relative_to(ROOT))) for p in PAGES])
def test_fences_are_known_languages(page: Path) -> None:
    """A block in another language (`py`, or none) would not be run nor highlighted."""
    unknown = [(line, info) for line, info, _ in fences(page) if _language(info) not in _LANGUAGES]
    assert not unknown, unknown


def test_first_agent_in_readme_answers_offline(tmp_path: Path) -> None:
    block = python_blocks(README)[0]
    assert "asyncio.run(main())" in block.code
    done = run_block(block.code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert "Tokyo" in done.stdout


def test_typed_output_example_streams_and_validates(tmp_path: Path) -> None:
    page = ROOT / "docs" / "guides" / "typed-output.md"
    (block,) = [block for block in python_blocks(page) if "output_type=Booking" in block.code]
    done = run_block(block.code, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "Paris 3 ['Ann Smith', 'Bob Jones']"
    assert any("complete: ('city',)" in line for line in lines)


def test_commands_in_readme_match_ci() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line and not line.startswith(("#", "set "))]
    assert commands
    for command in commands:
        assert command in README.read_text()


def test_fence_reader_sees_indented_blocks_and_titles(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        'text\n```python\nprint(1)\n```\n- item\n\n  ```python title="Not run: needs X"\n'
        "  print(2)\n  ```\n"
    )
    blocks = python_blocks(page)
    assert [b.code for b in blocks] == ["print(1)\n", "print(2)\n"]
    assert [b.not_run for b in blocks] == [None, "needs X"]
    assert [b.line for b in blocks] == [2, 7]


PACKAGES = ["agentstream", *(f"agentstream.{p}" for p in REFERENCE_PAGES)]


@pytest.mark.parametrize("package", PACKAGES)
def test_api_reference_lists_every_public_name(package: str) -> None:
    """A name added to a package's `__all__` must get its `::: name` line in the reference."""
    module = importlib.import_module(package)
    page = ROOT / "docs" / "reference" / f"{package.rpartition('.')[2] or package}.md"
    listed = re.findall(r"^::: (\S+)$", page.read_text(), flags=re.M)
    assert sorted(listed) == sorted(f"{package}.{name}" for name in module.__all__)


def test_every_page_is_in_the_nav() -> None:
    """mkdocs only notes a page left out of `nav`; here it fails, so none is forgotten."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    missing = sorted(page for page in pages if not re.search(rf"[ :]{re.escape(page)}$", nav, re.M))
    assert not missing, f"add a line to mkdocs.yml's nav for each of {missing}"


def test_readme_links_reach_files_and_headings() -> None:
    """The README is outside the site's strict build, so its links are checked here."""
    for target in re.findall(r"\]\(((?!https?://)[^)#]+)(?:#([^)]*))?\)", README.read_text()):
        path, anchor = ROOT / target[0], target[1]
        assert path.is_file(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, target


def test_readme_fits_on_a_few_screens() -> None:
    assert len(README.read_text().splitlines()) <= 300
