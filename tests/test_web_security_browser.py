"""Issue 22, finding 1, in a real headless Chromium: another site cannot run a tool.

Two attacks, each from a page Chromium really loads:

- Cross-origin: an attacker page served from a second loopback server (another origin)
  posts to the app's `/api/chat` with `fetch(..., {mode: "no-cors"})` and
  `text/plain`, then tries a JSON post, a stop and a stream read.
- DNS rebinding: Chromium resolves `rebound.test` to 127.0.0.1; the attacker page is
  served as `http://rebound.test:PORT/attack` (the app's port; Playwright answers that
  one document, as the attacker's server would before the name is rebound), so its
  fetches to `/api/...` are same-origin for the browser and reach the app.

Chromium's own guard against public pages calling loopback (Private Network Access)
would stop the rebound page before the app sees it, since the page Playwright answers
counts as public; it is switched off here, as other browsers lack it, so that what is
tested is the app's own check. After each attack the app's own kind of request runs the
tool, so the test can fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from ._web import running_server, ui_chat_body
from .test_web_browser import ARGS, CHROMIUM, WAIT, _install_chromium, _unavailable
from .test_web_security import Launches

REBOUND = "rebound.test"
# Chromium's Private Network Access checks, off: the app must hold without them.
NO_PNA = (
    "--disable-features=PrivateNetworkAccessRespectPreflightResults,"
    "BlockInsecurePrivateNetworkRequests,LocalNetworkAccessChecks"
)

ATTACK = """<!doctype html><meta charset="utf-8"><title>a page</title><script>
const target = %(target)s;
const body = JSON.stringify(%(body)s);
const results = {};
async function attempt(name, path, options) {
  try {
    const response = await fetch(target + path, options);
    results[name] = response.type === "opaque" ? "opaque" : response.status;
  } catch (error) {
    results[name] = "failed";
  }
}
(async () => {
  await attempt("no-cors-post", "/api/chat",
    {method: "POST", mode: "no-cors", headers: {"content-type": "text/plain"}, body});
  await attempt("json-post", "/api/chat",
    {method: "POST", headers: {"content-type": "application/json"}, body});
  await attempt("events-post", "/api/events",
    {method: "POST", headers: {"content-type": "application/json"},
     body: JSON.stringify({prompt: "launch it"})});
  await attempt("stop", "/api/chat/victim/stop",
    {method: "POST", mode: "no-cors", headers: {"content-type": "text/plain"}, body: "{}"});
  await attempt("read-stream", "/api/chat/victim/stream", {});
  window.results = results;
})();
</script>"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """test_web_browser's Chromium: `rebound.test` resolves to loopback, no PNA checks."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[dev]')")
    _install_chromium()
    rules = f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*ARGS, rules, NO_PNA]
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _attack_page(target: str) -> str:
    import json

    body = ui_chat_body("launch it", "victim")
    return ATTACK % {"target": json.dumps(target), "body": json.dumps(body)}


def _results(page: Any) -> dict[str, Any]:
    page.wait_for_function("window.results !== undefined", timeout=WAIT)
    results: dict[str, Any] = page.evaluate("window.results")
    return results


def _ran_with_a_good_request(url: str, launches: Launches) -> int:
    """Control: the app's own kind of request does run the tool (the test can fail)."""
    with httpx2.Client(base_url=url, timeout=20) as http:
        assert http.post("/api/chat", json=ui_chat_body("launch it", "own")).status_code == 200
    return launches.count


def test_a_page_of_another_origin_cannot_run_a_tool(browser: Any) -> None:
    from agentstream.web import create_app

    launches = Launches()
    launches.release.set()
    with running_server(create_app(launches.agent())) as url:

        async def attack(request: Request) -> HTMLResponse:
            return HTMLResponse(_attack_page(url))

        attacker = Starlette(routes=[Route("/attack", attack)])
        with running_server(attacker) as evil:
            context = browser.new_context()
            try:
                page = context.new_page()
                page.goto(evil + "/attack")
                results = _results(page)
            finally:
                context.close()
        assert launches.count == 0, results
        assert _ran_with_a_good_request(url, launches) == 1
    # An opaque answer tells the page nothing; the JSON requests need a preflight
    # (never granted) and fail; the stream cannot be read across origins.
    assert results == {
        "no-cors-post": "opaque",
        "json-post": "failed",
        "events-post": "failed",
        "stop": "opaque",
        "read-stream": "failed",
    }


def test_a_rebound_host_name_cannot_run_a_tool_nor_read_a_stream(browser: Any) -> None:
    from agentstream.web import create_app

    launches = Launches()
    launches.release.set()
    with running_server(create_app(launches.agent())) as url:
        port = url.rsplit(":", 1)[1]
        origin = f"http://{REBOUND}:{port}"
        context = browser.new_context()
        try:
            page = context.new_page()
            # The attacker's own server answers for the page, before the name is rebound.
            page.route(
                origin + "/attack",
                lambda route: route.fulfill(content_type="text/html", body=_attack_page("")),
            )
            page.goto(origin + "/attack")
            results = _results(page)
            direct = page.evaluate(
                "fetch('/').then((r) => r.status)"
            )  # the app itself, reached under the rebound name
        finally:
            context.close()
        assert launches.count == 0, results
        assert _ran_with_a_good_request(url, launches) == 1
    assert direct == 403
    # Same-origin for the browser, so every answer is readable: each is a refusal.
    assert results == dict.fromkeys(
        ["no-cors-post", "json-post", "events-post", "stop", "read-stream"], 403
    )
