"""The page at the user trigger's root, driven in a real headless Chromium on the local stack.

A user opens the page, gives it the token, posts a coding task with tests and an image through
its form, and watches it to the end without reloading: the test checks what the page shows
(status, code, the run's output, the image, the cost) against the API's own answer for the
same conversation, and that the token never appeared in a URL. With AGENTLOBBY_SCREENSHOT=1 the
screenshot goes to docs/images/page.png (the docs show it); otherwise to a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_emulator.stack import Stack
from local_emulator.stack_state import StackInfo
from tests.support.coding import (
    ADD_TESTS,
    GOOD_ADD,
    IMAGE,
    add_task,
    play,
    python_block,
    reply,
    token,
)
from tests.support.paths import REPO
from tests.support.user import JsonUser

CHROMIUM = Path("/usr/bin/chromium")
# Without these Chromium reaches for the network (updates, sync, QUIC probes); it is closed here.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TASK_TIMEOUT_MS = 90_000

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium package)")
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def screenshot_path(tmp_path: Path) -> Path:
    if os.environ.get("AGENTLOBBY_SCREENSHOT") == "1":
        return REPO / "docs" / "images" / "page.png"
    return tmp_path / "page.png"


def open_with_token(page: Any, info: StackInfo) -> None:
    page.goto(info.user_url + "/")
    page.get_by_test_id("token-input").fill(info.api_token)
    page.get_by_test_id("token-save").click()
    # The lobbies arrive from the API: the token worked.
    playwright_sync.expect(page.get_by_test_id("lobbies")).to_contain_text("coding")


def test_a_coding_task_posted_on_the_page_is_shown_live_to_its_end(
    stack: Stack, info: StackInfo, user: JsonUser, page: Any, tmp_path: Path
) -> None:
    expect = playwright_sync.expect
    tok = token()
    play(
        stack,
        {"agent": "vision", "match": tok, "replies": [reply("A checkerboard: decoration.", 30, 8)]},
        {"agent": "coder", "match": tok, "replies": [reply(python_block(GOOD_ADD), 40, 12)]},
    )
    urls: list[str] = []
    authorizations: list[str] = []

    def seen(request: Any) -> None:
        urls.append(request.url)
        if "authorization" in request.headers:
            authorizations.append(request.headers["authorization"])

    page.on("request", seen)
    open_with_token(page, info)
    page.evaluate("window.notReloaded = true")

    page.get_by_test_id("post-lobby").select_option("coding")
    page.get_by_test_id("post-text").fill(add_task(tok))
    page.get_by_test_id("post-tests").fill(ADD_TESTS)
    page.get_by_test_id("post-image").set_input_files(str(IMAGE))
    page.get_by_test_id("post-submit").click()

    expect(page.get_by_test_id("status")).to_have_text("succeeded", timeout=TASK_TIMEOUT_MS)
    conversation_id = page.get_by_test_id("conversation").get_attribute("data-id")
    view = user.conversation(conversation_id)
    assert view["status"] == "succeeded"

    # What the page shows is what the API answers.
    expect(page.get_by_test_id("final-code")).to_have_text(GOOD_ADD)
    expect(page.get_by_test_id("final-code").locator(".hljs-keyword").first).to_have_text("def")
    expect(page.get_by_test_id("stdout")).to_contain_text("tests passed")
    expect(page.get_by_test_id("exit-code")).to_have_text("0")
    expect(page.get_by_test_id("verdict")).to_contain_text("passed")
    expect(page.get_by_test_id("result")).to_contain_text("succeeded")
    expect(page.get_by_test_id("task-image")).to_be_visible()
    assert page.get_by_test_id("task-image").evaluate("img => img.naturalWidth") > 0
    expect(page.get_by_test_id("tokens")).to_have_text(f"{view['usage']['total_tokens']} tokens")
    assert view["usage"]["total_tokens"] == 30 + 8 + 40 + 12
    assert view["cost"]["total_usd"] > 0  # the offline model is priced (prices.json)
    expect(page.get_by_test_id("cost-total")).to_have_text(f"${view['cost']['total_usd']:.6f}")
    kinds = page.locator("[data-testid=messages] > li").evaluate_all(
        "items => items.map(item => item.dataset.kind)"
    )
    assert kinds == [m["kind"] for m in view["messages"]]
    expect(page.get_by_test_id("timeline")).to_be_visible()  # the test stack collects spans

    # The list shows it too, updated by its own stream.
    row = page.locator(f"[data-conversation='{conversation_id}']")
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text(f"{view['usage']['total_tokens']} tokens")

    assert page.evaluate("window.notReloaded") is True  # live updates, no reload
    page.screenshot(path=str(screenshot_path(tmp_path)), full_page=True)

    # The token went in the Authorization header, never in a URL (URLs end up in logs).
    assert authorizations and set(authorizations) == {f"Bearer {info.api_token}"}
    assert not [url for url in urls if info.api_token in url]


def test_a_wrong_token_is_refused_and_asked_for_again(info: StackInfo, page: Any) -> None:
    expect = playwright_sync.expect
    page.goto(info.user_url + "/")
    page.get_by_test_id("token-input").fill("not-the-token")
    page.get_by_test_id("token-save").click()
    expect(page.get_by_test_id("token-error")).to_contain_text("refused")
    assert page.evaluate("localStorage.getItem('agentlobby.token')") is None
    expect(page.get_by_test_id("lobbies")).to_have_count(0)

    page.get_by_test_id("token-input").fill(info.api_token)
    page.get_by_test_id("token-save").click()
    expect(page.get_by_test_id("lobbies")).to_contain_text("coding")
    page.reload()  # kept in the browser: not asked again
    expect(page.get_by_test_id("lobbies")).to_contain_text("coding")
    expect(page.get_by_test_id("token-input")).to_have_count(0)
