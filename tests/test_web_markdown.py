"""Answers' Markdown on the chat page, in a real headless Chromium.

The page turns Markdown into elements with createElement/textContent only: these tests
stream a normal answer and a hostile one through the real server (posted by the page,
as a user would) and check the DOM that comes out. Screenshots go to
`tests/artifacts/web/` like the other browser tests'.
"""

from __future__ import annotations

from typing import Any

from agentstream import Agent
from agentstream.testing import Reply, ScriptedModel
from agentstream.web import create_app

from ._web import running_server
from .test_web_browser import WAIT, ask, shot

# The browser fixtures of the page tests, reused here.
from .test_web_browser import browser as browser
from .test_web_browser import page as page

ANSWER = """\
## Trip summary

Here is **what I found** for *Rome*, with `get_weather` and the ~~old~~ new fares.

- Flights
  - Aurora: 120 EUR
  - Cobalt: 135 EUR
- Hotels

1. Book the flight
2. Book the hotel

| City | Weather | Price |
|:-----|:-------:|------:|
| Rome | sunny | 120 |
| Oslo | `rain` | 90 |

> Prices change fast: check [the fares page](https://example.com/fares?x=1) before booking.

```python
print("hello")  # <b>not bold</b>
```

Mail [us](mailto:team@example.com) or see <https://example.org/help>.
"""
TAIL = "\n" + " ".join(["More notes follow while the answer streams on."] * 20) + "\n"

HOSTILE = "\n\n".join(
    [
        'Look: <img src=x onerror="window.__pwned = 1"> and <script>window.__pwned = 2</script>',
        "[click](javascript:window.__pwned=3) [data](data:text/html,<script>x</script>)",
        '<a href="javascript:window.__pwned=4">raw link</a> [rel](/relative) '
        "[spaced](java\tscript:alert(1))",
        "<iframe src=javascript:window.__pwned=5></iframe> ![img](https://example.com/x.png)",
        "- " * 3000 + "deep list",
        "> " * 3000 + "deep quote",
        "\n".join(" " * n + "- level" for n in range(400)),
        "*" * 20_000 + " " + "_a " * 5000 + "[" * 5000 + "](" * 2000,
        "` `` " * 5000,
        "`" * 100_000,
    ]
)


def markdown_agent(text: str, tokens_per_second: float | None = None) -> Agent:
    model = ScriptedModel([Reply(text)], tokens_per_second=tokens_per_second)
    return Agent(client=model.async_client, model="m")


def texts(page: Any, selector: str) -> list[str]:
    return [text.strip() for text in page.locator(selector).all_inner_texts()]


def test_a_markdown_answer_becomes_headings_lists_code_tables_and_links(page: Any) -> None:
    with running_server(create_app(markdown_agent(ANSWER + TAIL, tokens_per_second=60))) as url:
        page.goto(url + "/")
        ask(page, "Summarise my trip")
        # While it streams: once the table is shown, the heading above it is final and
        # is not rebuilt again (only the open last block is re-rendered).
        page.wait_for_selector(".md table", timeout=WAIT)
        assert page.locator(".run-metrics").count() == 0
        page.evaluate("window.__heading = document.querySelector('.md h2')")
        shot(page, "md-1-streaming")
        page.wait_for_selector(".run-metrics", timeout=WAIT)
        shot(page, "md-2-finished")
        assert page.evaluate("window.__heading === document.querySelector('.md h2')")
        md = ".step .md"
        assert texts(page, f"{md} h2") == ["Trip summary"]
        assert texts(page, f"{md} p strong") == ["what I found"]
        assert texts(page, f"{md} p em") == ["Rome"]
        assert texts(page, f"{md} p del") == ["old"]
        assert texts(page, f"{md} > ul > li > ul > li") == ["Aurora: 120 EUR", "Cobalt: 135 EUR"]
        assert page.locator(f"{md} > ul > li").count() == 2
        assert texts(page, f"{md} > ol > li") == ["Book the flight", "Book the hotel"]
        assert "get_weather" in texts(page, f"{md} p > code")
        assert texts(page, f"{md} th") == ["City", "Weather", "Price"]
        assert texts(page, f"{md} td") == ["Rome", "sunny", "120", "Oslo", "rain", "90"]
        assert page.locator(f"{md} td code").inner_text() == "rain"
        assert page.locator(f"{md} th.align-center").inner_text() == "Weather"
        assert page.locator(f"{md} td.align-right").first.inner_text() == "120"
        code = page.locator(f"{md} pre > code")
        assert code.inner_text() == 'print("hello")  # <b>not bold</b>'
        assert code.get_attribute("data-lang") == "python"
        assert page.locator(f"{md} b").count() == 0
        link = page.locator(f"{md} blockquote a")
        assert link.inner_text() == "the fares page"
        assert link.get_attribute("href") == "https://example.com/fares?x=1"
        assert link.get_attribute("rel") == "noopener noreferrer"
        assert link.get_attribute("target") == "_blank"
        hrefs = page.eval_on_selector_all(f"{md} a", "links => links.map(a => a.href)")
        assert hrefs == [
            "https://example.com/fares?x=1",
            "mailto:team@example.com",
            "https://example.org/help",
        ]
        # A reload draws the same answer again from the tab's saved conversation.
        page.reload()
        page.wait_for_selector(".md table", timeout=WAIT)
        assert texts(page, f"{md} h2") == ["Trip summary"]
        assert page.locator(f"{md} td").count() == 6


def test_hostile_markdown_never_runs_injects_or_hangs(page: Any) -> None:
    with running_server(create_app(markdown_agent(HOSTILE))) as url:
        page.goto(url + "/")
        ask(page, "Say something dangerous")
        page.wait_for_selector(".run-metrics", timeout=WAIT)
        shot(page, "md-3-hostile")
        assert page.evaluate("window.__pwned") is None
        found = "#messages img, #messages script, #messages iframe, #messages b"
        assert page.locator(found).count() == 0
        hrefs = page.eval_on_selector_all(".md a", "links => links.map(a => a.href)")
        assert hrefs == ["https://example.com/x.png"]  # the image, shown as a link
        shown = page.locator(".step .md").inner_text()
        assert '<img src=x onerror="window.__pwned = 1">' in shown
        assert "<script>window.__pwned = 2</script>" in shown
        assert "[click](javascript:window.__pwned=3)" in shown
        assert '<a href="javascript:window.__pwned=4">raw link</a>' in shown
        # Nesting stops at a few levels; what is deeper shows as text.
        depth = page.evaluate(
            """() => {
              let deepest = 0;
              for (const node of document.querySelectorAll('.md li, .md blockquote')) {
                let n = 0;
                for (let at = node; at; at = at.parentElement) {
                  if (at.matches('li, blockquote')) n++;
                }
                deepest = Math.max(deepest, n);
              }
              return deepest;
            }"""
        )
        assert 2 <= depth <= 8
        assert "deep list" in shown
        assert "deep quote" in shown
        # The page still answers: the composer takes a new question at once.
        ask(page, "Hello again")
        page.wait_for_selector(".message.user >> nth=1", timeout=WAIT)
        assert page.evaluate("window.__pwned") is None
