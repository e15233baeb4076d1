"""The chat page in a real headless Chromium (Debian's, driven by Playwright).

A session fixture installs Debian's `chromium` with apt-get when it is missing (as root),
and Playwright drives it through `executable_path` (never `playwright install`). Each
test serves the app with uvicorn on a free loopback port. Screenshots of each state go to
`tests/artifacts/web/` (ignored by git).
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
from agentstream.testing import OFFLINE_MODEL_NAME, Reply, ScriptedModel, offline_model
from agentstream.web import RunRegistry, create_app, demo_tools

from ._web import running_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts" / "web"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT = 20_000  # milliseconds: generous, for a shared and busy machine


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


def _install_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        _unavailable("Debian's chromium is missing and apt-get cannot install it (needs root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            _unavailable(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for this module.

    Not for the session: Playwright's sync API keeps an event loop running in the main
    thread while it is open, and other modules start their own there.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[dev]')")
    _install_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"the page raised: {errors}"


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def ask(page: Any, text: str) -> None:
    """Type a question and press Enter, as a keyboard user does."""
    page.focus("#prompt")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def chat_requests(model: ScriptedModel) -> int:
    return sum(r.path.endswith("/chat/completions") for r in model.requests)


def paced_agent(model: ScriptedModel) -> Agent:
    return Agent(client=model.async_client, model=OFFLINE_MODEL_NAME, tools=demo_tools())


def test_weather_in_two_cities_streams_cards_and_the_timeline(page: Any) -> None:
    model = offline_model(ttft=0.2, tokens_per_second=40)
    with running_server(create_app(paced_agent(model))) as url:
        page.goto(url + "/")
        ask(page, "What's the weather in Paris and Tokyo?")
        page.wait_for_selector(".tool .args:not(:empty)", timeout=WAIT)
        shot(page, "1-arguments-streaming")
        page.wait_for_selector(".step .text:not(:empty)", timeout=WAIT)
        assert page.locator(".run-metrics").count() == 0  # text is shown while it streams
        shot(page, "2-text-streaming")
        page.wait_for_selector(".run-metrics", timeout=WAIT)
        shot(page, "3-finished")
        cards = page.locator(".tool")
        assert cards.count() == 2
        results = [cards.nth(i).locator(".result").inner_text() for i in range(2)]
        assert ["Paris" in results[0], "Tokyo" in results[1]] == [True, True]
        assert page.locator(".tool.done").count() == 2
        assert "Paris" in page.locator(".step .text").last.inner_text()
        assert page.locator("details.reasoning").count() == 1
        assert page.locator("details.reasoning[open]").count() == 0  # folded away
        metrics = page.locator(".step + .metrics, .metrics").all_inner_texts()
        assert any("TTFT" in line and "tok/s" in line for line in metrics)
        labels = page.locator("#timeline .row .label").all_inner_texts()
        assert labels[0] == "step 1"
        assert sorted(label.split()[0] for label in labels) == [
            "get_weather", "get_weather", "step", "step",
        ]  # fmt: skip
        widths = page.eval_on_selector_all(
            "#timeline .bar", "bars => bars.map(b => b.getBoundingClientRect().width)"
        )
        assert all(width > 0 for width in widths)
        assert page.locator("#stop").is_disabled()
    assert chat_requests(model) == 2


def test_stop_button_and_escape_stop_a_long_run(page: Any) -> None:
    model = offline_model(ttft=0.1, tokens_per_second=80)
    with running_server(create_app(paced_agent(model))) as url:
        page.goto(url + "/")
        ask(page, "Wait 300 seconds please")
        page.wait_for_selector(".tool.running", timeout=WAIT)
        # The tool reports how far it is: a bar and a status line on its card.
        page.wait_for_selector(".tool.running .progress progress", timeout=WAIT)
        page.wait_for_function(
            "document.querySelector('.tool .progress-text').textContent.includes('of 300 s')",
            timeout=WAIT,
        )
        shot(page, "4-long-tool-running")
        page.click("#stop")
        page.wait_for_selector(".notice", timeout=WAIT)
        assert "stopped" in page.locator(".notice").inner_text()
        assert "cancelled" in page.locator(".tool .state").inner_text()
        shot(page, "5-stopped-by-button")
        ask(page, "Wait 200 seconds please")  # keyboard only: Enter sends, Escape stops
        page.wait_for_selector(".message.assistant >> nth=1 >> .tool.running", timeout=WAIT)
        page.keyboard.press("Escape")
        page.wait_for_selector(".message.assistant >> nth=1 >> .notice", timeout=WAIT)
        shot(page, "6-stopped-by-escape")
        assert page.locator("#send").is_enabled()
    assert chat_requests(model) == 2  # one per run: neither got to answer


def test_a_reload_mid_run_reattaches_without_a_second_model_request(page: Any) -> None:
    model = offline_model(ttft=0.1, tokens_per_second=80)
    app = create_app(paced_agent(model), registry=RunRegistry(reattach_grace=30))
    with running_server(app) as url:
        page.goto(url + "/")
        ask(page, "Wait 3 seconds please")
        page.wait_for_selector(".tool.running", timeout=WAIT)
        assert chat_requests(model) == 1
        page.reload()
        shot(page, "7-reloaded-mid-run")
        assert page.locator(".tool").count() == 1  # what was shown before the reload
        page.wait_for_selector(".run-metrics", timeout=WAIT)
        shot(page, "8-reattached-and-finished")
        assert page.locator(".tool.done").count() == 1
        assert "waited 3 seconds" in page.locator(".tool .result").inner_text()
        assert page.locator(".message.assistant").count() == 1
        assert page.locator(".message.user").count() == 1
    assert chat_requests(model) == 2  # the tool step and the answer: no request again


def test_model_html_shows_as_text_and_never_runs(page: Any) -> None:
    attack = 'Look: <img src=x onerror="window.__pwned = 1"> <script>window.__pwned = 2</script>'
    model = ScriptedModel([Reply(attack)])
    agent = Agent(client=model.async_client, model="m")
    with running_server(create_app(agent)) as url:
        page.goto(url + "/")
        ask(page, "Say something dangerous")
        page.wait_for_selector(".run-metrics", timeout=WAIT)
        shot(page, "9-html-as-text")
        assert page.locator(".step .text").inner_text() == attack
        assert page.locator("#messages img, #messages script").count() == 0
        assert page.evaluate("window.__pwned") is None


def test_approving_a_call_with_the_keyboard_continues_the_same_answer(page: Any) -> None:
    model = offline_model(ttft=0.1, tokens_per_second=80)
    with running_server(create_app(paced_agent(model))) as url:
        page.goto(url + "/")
        ask(page, "Book a hotel in Rome for 2 nights")
        page.wait_for_selector(".tool.awaiting .approval button.approve", timeout=WAIT)
        shot(page, "10-awaiting-approval")
        assert "awaiting approval" in page.locator(".tool .state").inner_text()
        assert page.locator("#send").is_enabled()  # the run has paused, not stopped
        # Keyboard only: the Approve button has the focus, Enter presses it.
        page.wait_for_function("document.activeElement.classList.contains('approve')")
        page.keyboard.press("Enter")
        page.wait_for_selector(".run-metrics >> nth=1", timeout=WAIT)
        shot(page, "11-approved-and-answered")
        assert page.locator(".message.assistant").count() == 1  # the same answer went on
        card = page.locator(".tool")
        assert card.count() == 1
        assert "done" in card.get_attribute("class")
        result = card.locator(".result").inner_text()
        assert result.startswith("booked 2 nights in Rome")
        assert page.locator(".approval").count() == 0
        assert result in page.locator(".step .text").last.inner_text()
        assert "answer" in page.locator(".run-metrics").last.inner_text()
    assert chat_requests(model) == 2  # the paused step, then the answer: none asked twice


def test_denying_a_call_with_a_reason_tells_the_model(page: Any) -> None:
    model = offline_model(ttft=0.1, tokens_per_second=80)
    with running_server(create_app(paced_agent(model))) as url:
        page.goto(url + "/")
        ask(page, "Book a hotel in Rome for 2 nights")
        page.wait_for_selector(".tool.awaiting .approval input", timeout=WAIT)
        page.focus(".approval input")
        page.keyboard.type("over budget")
        page.keyboard.press("Enter")  # Enter in the reason denies
        page.wait_for_selector(".run-metrics >> nth=1", timeout=WAIT)
        shot(page, "12-denied-and-answered")
        card = page.locator(".tool")
        assert "error" in card.get_attribute("class")
        assert card.locator(".state").inner_text() == "denied"
        assert card.locator(".result").inner_text() == "denied: over budget"
        answer = page.locator(".step .text").last.inner_text()
        assert "did not approve" in answer
        assert "over budget" in answer
        assert page.locator(".message.assistant").count() == 1
    told = model.requests[-1].body["messages"][-1]
    assert told["role"] == "tool"
    assert "over budget" in told["content"]


def test_the_cancel_button_on_a_running_card_cancels_that_call_and_the_run_goes_on(
    page: Any,
) -> None:
    model = offline_model(ttft=0.1, tokens_per_second=80)
    with running_server(create_app(paced_agent(model))) as url:
        page.goto(url + "/")
        ask(page, "Wait 300 seconds please")
        page.wait_for_selector(".tool.running .cancel-call", timeout=WAIT)
        shot(page, "13-cancel-button-on-a-running-card")
        button = page.locator(".tool.running .cancel-call")
        assert button.get_attribute("aria-label", timeout=WAIT).startswith("Cancel ")
        button.click()
        page.wait_for_selector(".run-metrics", timeout=WAIT)  # the run went on to answer
        shot(page, "14-call-cancelled-run-answered")
        card = page.locator(".tool")
        assert card.count() == 1
        # "cancelled" comes from the stream's data part; the output is what the model saw.
        assert card.locator(".state").inner_text() == "cancelled"
        assert "error" in card.get_attribute("class")
        assert card.locator(".result").inner_text().startswith("Cancelled by the user")
        assert page.locator(".cancel-call").count() == 0
        assert page.locator(".notice").count() == 0  # one call cancelled, not the run
        assert "answer" in page.locator(".run-metrics").inner_text()
    assert chat_requests(model) == 2
    told = model.requests[-1].body["messages"][-1]
    assert told["role"] == "tool"
    assert told["content"].startswith("Cancelled by the user before the tool finished")
