"""The desk in a real browser: Debian's Chromium driven by Playwright, against `outreach serve` on the demo's
workspace. Log in, open a reply, mark it signed after editing the printed line, and find the new signatory in the
next letter rendered; a wrong password and a form without its CSRF token are refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RUNS, _unavailable
from .desk_server import CHROMIUM, Desk, serving
from .test_demo import run_demo

PASSWORD = "correct horse battery staple"
# Where the README's picture of the desk is written, when asked: OUTREACH_DESK_SCREENSHOT=docs/desk.png.
SCREENSHOT = os.environ.get("OUTREACH_DESK_SCREENSHOT")


@pytest.fixture(scope="module")
def demo_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Desk]]:
    """The demo's workspace, with a campaigner `alice`, served by `outreach serve`."""
    folder = tmp_path_factory.mktemp("desk") / "demo"
    result, _, _ = run_demo(folder)
    assert result.returncode == 0, result.stderr
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")} | {"COLUMNS": "200"}
    RUNS.run(["users", "add", "alice", "--password-stdin"], input=PASSWORD, cwd=folder, env=environ, check=True,
             text=True)  # fmt: skip
    with serving(folder, environ) as desk:
        yield folder, desk


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's: Playwright's own download is not reachable here)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)", "browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')", "browser")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs the tests as root, where Chromium's sandbox will not start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def test_log_in_open_a_reply_and_publish_a_signatory_after_editing_the_line(
    demo_desk: tuple[Path, Desk], browser: object
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    folder, desk = demo_desk
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{desk.url}/responses")
    assert page.url.startswith(f"{desk.url}/login")
    # A wrong password is refused, and the desk stays closed.
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.locator("p.error")).to_contain_text("do not match")
    page.goto(f"{desk.url}/responses")
    assert "/login" in page.url
    # The right one opens it, where it was asked for.
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Responses")
    expect(page.locator("p.count")).to_contain_text("of 6")
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)
    # Open the Taoiseach's office's reply: its new text, and the letter it answers.
    page.click("text=Thank you for your letter to the Taoiseach")
    expect(page.locator("pre.reply")).to_contain_text("Thank you for your letter to the Taoiseach")
    expect(page.locator("text=The letter it answers")).to_be_visible()
    # Signed: the line to be printed is shown for editing before anything is published.
    page.click("button[value=signed]")
    expect(page.locator("h1")).to_contain_text("to the signatories")
    name = page.input_value("input[name=name]")
    page.fill("input[name=line]", "Taoiseach, Government of Ireland")
    page.click("text=Publish as a signatory")
    expect(page.locator("p.done")).to_contain_text("Taoiseach, Government of Ireland")
    page.close()
    # The next letter rendered prints the new signatory with the edited line.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    letter = RUNS.run(["templates", "render", "appeal", "-c", "elysee@example.org"], cwd=folder, env=environ,
                      check=True, text=True).stdout  # fmt: skip
    assert f"{name}, Taoiseach, Government of Ireland" in letter


def test_a_form_without_its_csrf_token_is_refused_in_the_browser(demo_desk: tuple[Path, Desk], browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    _, desk = demo_desk
    page = browser.new_page()
    page.goto(f"{desk.url}/login")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Responses")
    page.click("td.text a >> nth=0")
    expect(page.locator("button[value=declined]")).to_be_visible()  # the response's own page, loaded
    # A page from elsewhere would post without the token: take it out of the form, then press a button.
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(input => input.remove())")
    page.click("button[value=declined]")
    expect(page.locator("p.error")).to_contain_text("security token")
    page.go_back()
    page.reload()
    expect(page.locator("dd.outcome")).not_to_have_text("declined")
    page.close()
