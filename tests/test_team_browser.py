"""Signing in, in a real browser: Debian's Chromium driven by Playwright, over `crash-aggregates serve` with users.

A page is refused until its user signs in; the session then carries the
page's scripts (their CSRF token from the page's meta tag); a viewer's save is
refused; signing out ends it. Without /usr/bin/chromium these tests fail
(`make chromium` installs it).
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from helpers import serving
from test_web_browser import IMAGES, browser  # noqa: F401, F811  (the fixture: Debian's chromium)

from crash_aggregates.cli import cli

pytestmark = pytest.mark.slow

PASSWORDS = {"eve": "eve-password-2", "ada": "ada-password-1"}
SAVE = """async () => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const response = await fetch("/api/queries", {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify({name: "Saved from the page", sql: "SELECT 1"}),
    });
    return [response.status, await response.json()];
}"""


@pytest.fixture(scope="module")
def server(demo_data, tmp_path_factory):
    """`serve` over the demo week with an editor (eve) and a viewer (ada)."""
    state = tmp_path_factory.mktemp("team") / "state.sqlite3"
    for name, role in (("eve", "editor"), ("ada", "viewer")):
        added = CliRunner().invoke(
            cli,
            ["users", "add", name, "--role", role, "--password-stdin", "--state", str(state)],
            input=PASSWORDS[name] + "\n",
        )
        assert added.exit_code == 0, added.output
    with serving(demo_data, "--state", str(state)) as url:
        yield url


@pytest.fixture
def page(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=server)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    yield page
    context.close()


def sign_in(page, name: str, password: str, then: str = "/overview") -> None:
    page.goto(then)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_an_editor_signs_in_saves_from_the_page_and_signs_out(page, server):
    page.goto("/explore?by=channel")
    assert "/login?next=%2Fexplore%3Fby%3Dchannel" in page.url
    page.fill("input[name=name]", "eve")
    page.fill("input[name=password]", "not her password")
    page.click("button[type=submit]")
    assert page.locator("p.error").inner_text() == "Wrong user name or password."
    page.screenshot(path=str(IMAGES / "sign-in.png"))
    page.fill("input[name=name]", "eve")
    page.fill("input[name=password]", PASSWORDS["eve"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/explore\?by=channel$"))
    assert page.locator("form.signed-in span").inner_text() == "eve · editor"
    page.screenshot(path=str(IMAGES / "signed-in.png"), clip={"x": 0, "y": 0, "width": 1400, "height": 60})
    status, saved = page.evaluate(SAVE)
    assert status == 201 and saved["author"] == "eve" and saved["version"] == 1
    cookie = next(c for c in page.context.cookies() if c["name"] == "crash_aggregates_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session
    page.click("form.signed-in button")
    page.wait_for_url(re.compile(r"/login$"))
    assert page.context.request.get(server + "/api/queries").status == 401
    # the wrong password's page was a 401, which Chromium notes; nothing else (no CSP violation, no script error)
    assert page.problems == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]


def test_a_viewer_looks_but_cannot_save(page, server):
    sign_in(page, "ada", PASSWORDS["ada"])
    page.wait_for_url(re.compile(r"/overview$"))
    assert page.locator("form.signed-in span").inner_text() == "ada · viewer"
    status, answer = page.evaluate(SAVE)
    assert status == 403 and answer == {"error": "only editors and admins may do this; ada is a viewer"}
    names = page.evaluate("async () => (await (await fetch('/api/queries')).json()).queries.map(q => q.name)")
    assert isinstance(names, list)  # a viewer reads the saved queries (eve's, if her test ran first)
    assert page.problems == ["Failed to load resource: the server responded with a status of 403 (Forbidden)"]
