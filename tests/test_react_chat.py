"""`examples/react_chat/`: a React app with the AI SDK's `useChat`, in headless Chromium.

A module fixture installs the example's npm packages (react, react-dom, @ai-sdk/react,
ai, esbuild) once into a cache outside the repository (like tests/test_web_ai_sdk.py's
`ai`), builds the bundle with esbuild, and the example's server serves it from the same
origin as agentstream's `/api/chat`. The tests type a prompt and watch the tool cards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from agentstream import Agent
from agentstream.testing import OFFLINE_MODEL_NAME, offline_model
from agentstream.web import demo_tools
from examples.react_chat.server import react_app

from ._web import running_server
from .test_web_browser import WAIT, shot

# The browser fixtures of the page tests, reused here.
from .test_web_browser import browser as browser
from .test_web_browser import page as page

EXAMPLE = Path(__file__).parent.parent / "examples" / "react_chat"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the React example's test: {reason}")
    pytest.skip(reason)


def _cache() -> Path:
    root = os.environ.get("AGENTSTREAM_TEST_CACHE") or Path.home() / ".cache" / "agentstream-tests"
    return Path(root) / "react"


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the example's page, its CSS and a freshly built bundle."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        _unavailable("node and npm are needed to build the React example")
    folder = _cache()
    manifest = (EXAMPLE / "package.json").read_text()
    stamp = folder / "installed-package.json"
    if not stamp.is_file() or stamp.read_text() != manifest:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text(manifest)
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            _unavailable(f"npm install failed: {done.stderr.strip()[-500:]}")
        stamp.write_text(manifest)
    out = tmp_path_factory.mktemp("react") / "static"
    shutil.copytree(EXAMPLE / "static", out)
    shutil.copy(EXAMPLE / "app.jsx", folder / "app.jsx")
    built = subprocess.run(
        ["./node_modules/.bin/esbuild", "app.jsx", "--bundle", "--minify",
         f"--outfile={out / 'bundle.js'}"],
        cwd=folder, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    return out


@pytest.fixture
def url(static: Path) -> Iterator[str]:
    model = offline_model(ttft=0.1, tokens_per_second=80)
    agent = Agent(client=model.async_client, model=OFFLINE_MODEL_NAME, tools=demo_tools())
    with running_server(react_app(agent, static)) as base:
        yield base


def send(page: Any, text: str) -> None:
    page.wait_for_selector("#send:not([disabled])", timeout=WAIT)
    page.fill("#prompt", text)
    page.click("#send")


def test_use_chat_shows_the_tool_card_and_the_answer(page: Any, url: str) -> None:
    page.goto(url + "/")
    send(page, "What's the weather in Paris?")
    card = page.locator('.tool[data-tool="get_weather"]')
    page.wait_for_selector('.tool[data-tool="get_weather"].output-available', timeout=WAIT)
    assert '"Paris"' in card.locator(".input").inner_text()
    assert "Paris" in card.locator(".output").inner_text()
    page.wait_for_function(
        "() => document.querySelector('#status').textContent === 'ready'"
        " && [...document.querySelectorAll('.message.assistant .text')]"
        ".some((p) => p.textContent.includes('Paris'))",
        timeout=WAIT,
    )
    shot(page, "react-1-weather")
    assert page.locator(".message.assistant").count() == 1


def test_use_chat_approves_one_call_and_denies_another(page: Any, url: str) -> None:
    page.goto(url + "/")
    send(page, "Book a hotel in Rome for 2 nights")
    page.wait_for_selector(".tool.approval-requested .approve", timeout=WAIT)
    shot(page, "react-2-awaiting-approval")
    page.click(".tool.approval-requested .approve")
    page.wait_for_selector(".tool.output-available", timeout=WAIT)
    assert "booked 2 nights in Rome" in page.locator(".tool .output").inner_text()
    page.wait_for_function(
        "() => document.querySelector('#status').textContent === 'ready'", timeout=WAIT
    )
    send(page, "Book a hotel in Oslo for 3 nights")
    page.wait_for_selector(".tool.approval-requested .deny", timeout=WAIT)
    page.click(".tool.approval-requested .deny")
    page.wait_for_selector(".tool.output-denied", timeout=WAIT)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.message.assistant .text')]"
        ".some((p) => p.textContent.includes('did not approve'))",
        timeout=WAIT,
    )
    shot(page, "react-3-approved-and-denied")
    assert page.locator(".tool.output-available").count() == 1
    assert page.locator(".tool.output-denied").count() == 1
