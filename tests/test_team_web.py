"""Who may do what over HTTP: sign-in, sessions, API tokens, CSRF, roles, the local mode, the proxy header.

Every test talks to the real application (Starlette's TestClient, or `serve`
in a subprocess), with users made by the library in a real state file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from helpers import run
from starlette.testclient import TestClient

from crash_aggregates import users
from crash_aggregates.cli import cli
from crash_aggregates.config import default_config
from crash_aggregates.state import Shared
from crash_aggregates.web.app import create_app
from crash_aggregates.web.auth import COOKIE

PASSWORDS = {"ada": "ada-password-1", "eve": "eve-password-2", "root": "root-password-3"}
ROLES = {"ada": "viewer", "eve": "editor", "root": "admin"}
QUERY = {
    "name": "Crash rates by channel",
    "sql": "SELECT dimensions['channel'], count(*) FROM crash_aggregates GROUP BY 1",
}


@pytest.fixture
def state(tmp_path):
    shared = Shared(tmp_path / "state.sqlite3")
    yield shared
    shared.close()


@pytest.fixture
def team(state):
    """Three users, one of each role; returns their API tokens."""
    tokens = {}
    with state.use() as db:
        for name, role in ROLES.items():
            users.add(db, name, role, PASSWORDS[name])
            tokens[name] = users.new_token(db, name)
    return tokens


def app_for(tmp_path, state, **options):
    return create_app(str(tmp_path), default_config(), state=state, **options)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient, name: str, password: str | None = None) -> str:
    """Sign in through the form as a browser does; returns the session's CSRF token."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login",
        data={"name": name, "password": password or PASSWORDS[name], "csrf_token": csrf, "next": "/overview"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client.get("/api/me").json()["csrf_token"]


# -- roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, can_save, can_manage",
    [("ada", False, False), ("eve", True, False), ("root", True, True)],
)
def test_each_role_with_its_token(tmp_path, state, team, name, can_save, can_manage):
    with TestClient(app_for(tmp_path, state)) as c:
        auth = bearer(team[name])
        assert c.get("/api/queries", headers=auth).json() == {"queries": []}
        saved = c.post("/api/queries", json=QUERY, headers=auth)
        assert saved.status_code == (201 if can_save else 403), saved.text
        if not can_save:
            assert saved.json() == {"error": f"only editors and admins may do this; {name} is a viewer"}
        assert c.get("/api/users", headers=auth).status_code == (200 if can_manage else 403)
        assert c.get("/api/me", headers=auth).json()["role"] == ROLES[name]


def test_a_viewer_cannot_change_a_query_or_a_dashboard(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        query = c.post("/api/queries", json=QUERY, headers=bearer(team["eve"])).json()
        board = c.post(
            "/api/dashboards",
            json={"name": "Stability", "widgets": [{"type": "query", "query": query["id"]}]},
            headers=bearer(team["eve"]),
        ).json()
        viewer = bearer(team["ada"])
        for method, url in [
            ("PUT", f"/api/queries/{query['id']}"),
            ("POST", f"/api/queries/{query['id']}/fork"),
            ("POST", f"/api/queries/{query['id']}/versions/1/restore"),
            ("POST", "/api/dashboards"),
            ("PUT", f"/api/dashboards/{board['id']}"),
            ("POST", f"/api/dashboards/{board['id']}/versions/1/restore"),
        ]:
            response = c.request(method, url, json={"name": "changed"}, headers=viewer)
            assert response.status_code == 403, (method, url)
        assert c.get(f"/api/queries/{query['id']}", headers=viewer).json()["name"] == QUERY["name"]
        assert c.get(f"/api/dashboards/{board['slug']}", headers=viewer).json()["version"] == 1


def test_a_disabled_users_token_and_session_stop_working(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as browser, TestClient(app_for(tmp_path, state)) as script:
        csrf = sign_in(browser, "eve")
        assert browser.post("/api/queries", json=QUERY, headers={"X-CSRF-Token": csrf}).status_code == 201
        assert script.get("/api/queries", headers=bearer(team["eve"])).status_code == 200
        with state.use() as db:
            users.disable(db, "eve")
        refused = script.get("/api/queries", headers=bearer(team["eve"]))
        assert refused.status_code == 401 and "not valid" in refused.json()["error"]
        assert browser.get("/api/queries").status_code == 401  # the session ended
        with state.use() as db:
            users.enable(db, "eve")
        assert script.get("/api/queries", headers=bearer(team["eve"])).status_code == 200


@pytest.mark.parametrize("token", ["ca_" + "x" * 43, "not-a-token", ""])
def test_a_wrong_token_is_refused(tmp_path, state, team, token):
    with TestClient(app_for(tmp_path, state)) as c:
        assert c.get("/api/queries", headers=bearer(token)).status_code == 401


# -- anonymous requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_once_users_exist_nobody_anonymous_gets_in(tmp_path, state, team, host):
    with TestClient(app_for(tmp_path, state, host=host), base_url="http://localhost") as c:
        assert c.get("/api/queries").status_code == 401
        assert c.get("/api/rates?stat=main_crashes").status_code == 401
        page = c.get("/overview?days=3", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Foverview%3Fdays%3D3"
        assert c.get("/static/style.css").status_code == 200  # the sign-in page needs it
        assert c.post("/api/queries", json=QUERY).status_code in (401, 403)


def test_without_users_the_local_user_is_an_admin_on_loopback_only(tmp_path, state):
    with TestClient(app_for(tmp_path, state, host="127.0.0.1"), base_url="http://127.0.0.1:8000") as c:
        me = c.get("/api/me").json()
        assert (me["name"], me["role"], me["via"]) == ("local", "admin", "local")
        # a script (no cookie, no Origin) needs no CSRF token in the local mode
        with TestClient(app_for(tmp_path, state, host="127.0.0.1"), base_url="http://localhost") as script:
            assert script.post("/api/queries", json=QUERY).status_code == 201
    # a page of another site that reaches it by DNS rebinding has another Host
    with TestClient(app_for(tmp_path, state, host="127.0.0.1"), base_url="http://evil.example") as c:
        refused = c.get("/api/queries")
        assert refused.status_code == 403 and "answers only to localhost" in refused.json()["error"]
    # the same server bound elsewhere has no local user
    with TestClient(app_for(tmp_path, state, host="0.0.0.0"), base_url="http://localhost") as c:
        assert c.get("/api/queries").status_code == 401


# -- CSRF -----------------------------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        csrf = sign_in(c, "eve")
        for headers in ({}, {"X-CSRF-Token": "0" * 64}):
            refused = c.post("/api/queries", json=QUERY, headers=headers)
            assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
        assert c.get("/api/queries").json() == {"queries": []}  # nothing was saved
        assert c.post("/api/queries", json=QUERY, headers={"X-CSRF-Token": csrf}).status_code == 201
        # a form post carries it as a field; without it, sign-out is refused too
        assert c.post("/logout", follow_redirects=False).status_code == 403
        assert c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
        assert c.get("/api/queries").status_code == 401


def test_a_post_from_another_site_is_refused_even_with_the_token(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        csrf = sign_in(c, "eve")
        refused = c.post("/api/queries", json=QUERY, headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
        assert refused.status_code == 403 and "another site" in refused.json()["error"]


def test_the_local_mode_needs_the_csrf_token_from_a_browser(tmp_path, state):
    with TestClient(app_for(tmp_path, state)) as c:
        csrf = c.get("/api/me").json()["csrf_token"]  # the browser now has its cookie
        assert c.post("/api/queries", json=QUERY).status_code == 403
        assert c.post("/api/queries", json=QUERY, headers={"X-CSRF-Token": csrf}).status_code == 201
    with TestClient(app_for(tmp_path, state)) as c:  # no cookie, but a browser's Origin: a cross-site form
        assert c.post("/api/queries", json=QUERY, headers={"Origin": "http://testserver"}).status_code == 403


def test_a_csrf_token_belongs_to_its_browser(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as alice, TestClient(app_for(tmp_path, state)) as mallory:
        sign_in(alice, "eve")
        other = mallory.get("/api/me", headers=bearer(team["ada"])).json()["csrf_token"]
        assert other is None  # a token-authenticated request has no CSRF token
        foreign = login_form_csrf(mallory)
        assert alice.post("/api/queries", json=QUERY, headers={"X-CSRF-Token": foreign}).status_code == 403


# -- sign-in ---------------------------------------------------------------------------------------------


def login_form_csrf(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def test_sign_in_sets_a_fresh_http_only_lax_cookie(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        login_form_csrf(c)
        before = c.cookies.get(COOKIE)
        sign_in(c, "eve")
        after = c.cookies.get(COOKIE)
        assert before and after and after != before  # a cookie planted before sign-in never becomes a session
    with TestClient(app_for(tmp_path, state)) as c:
        csrf = login_form_csrf(c)
        refused = c.post("/login", data={"name": "eve", "password": PASSWORDS["eve"], "csrf_token": csrf[::-1]})
        assert refused.status_code == 403 and COOKIE not in refused.headers.get("set-cookie", "")
    with TestClient(app_for(tmp_path, state), base_url="https://dash.example") as c:
        cookie = c.get("/login").headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_sign_in_never_redirects_elsewhere(tmp_path, state, team, target):
    with TestClient(app_for(tmp_path, state)) as c:
        form = {"name": "eve", "password": PASSWORDS["eve"], "csrf_token": login_form_csrf(c), "next": target}
        assert c.post("/login", data=form, follow_redirects=False).headers["location"] == "/"


def test_sign_in_refuses_a_wrong_password(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        form = {"name": "eve", "password": "nope-nope", "csrf_token": login_form_csrf(c)}
        wrong = c.post("/login", data=form)
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        assert c.get("/api/queries").status_code == 401


def test_sign_in_is_rate_limited_per_user(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        csrf = login_form_csrf(c)
        statuses = [
            c.post("/login", data={"name": "eve", "password": f"guess-{i}", "csrf_token": csrf}).status_code
            for i in range(6)
        ]
        assert statuses == [401] * 5 + [429]
        # even the right password waits now, and the answer says how long
        blocked = c.post("/login", data={"name": "eve", "password": PASSWORDS["eve"], "csrf_token": csrf})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 800
        # another user is not blocked by eve's failures
        ok = c.post("/login", data={"name": "ada", "password": PASSWORDS["ada"], "csrf_token": csrf},
                    follow_redirects=False)  # fmt: skip
        assert ok.status_code == 303


def test_sign_in_is_rate_limited_per_address(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        csrf = login_form_csrf(c)
        names = [f"guess{i}" for i in range(20)]  # a different name each time: only the address limit applies
        statuses = [
            c.post("/login", data={"name": n, "password": "x" * 9, "csrf_token": csrf}).status_code for n in names
        ]
        assert statuses == [401] * 20
        blocked = c.post("/login", data={"name": "eve", "password": PASSWORDS["eve"], "csrf_token": csrf})
        assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text


def test_the_page_shows_who_is_signed_in_and_a_sign_out_form(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        csrf = sign_in(c, "ada")
        html = c.get("/overview").text
        assert "ada · viewer" in html and f'name="csrf_token" value="{csrf}"' in html
        assert f'<meta name="csrf-token" content="{csrf}">' in html  # for the page's scripts


# -- the proxy header -------------------------------------------------------------------------------------


def test_the_proxy_user_header_is_trusted_only_when_asked(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        assert c.get("/api/me", headers={"X-Forwarded-User": "root"}).status_code == 401
    with TestClient(app_for(tmp_path, state, trust_user_header="X-Forwarded-User")) as c:
        assert c.get("/api/me", headers={"X-Forwarded-User": "root"}).json()["role"] == "admin"
        unknown = c.get("/api/me", headers={"X-Forwarded-User": "mallory"})
        assert unknown.status_code == 403 and "no enabled account" in unknown.json()["error"]
        assert c.get("/api/me").status_code == 401


# -- users for admins -------------------------------------------------------------------------------------


def test_an_admin_manages_users_over_http(tmp_path, state, team):
    with TestClient(app_for(tmp_path, state)) as c:
        admin = bearer(team["root"])
        made = c.post("/api/users", json={"name": "zoe", "role": "viewer"}, headers=admin)
        assert made.status_code == 201 and made.json()["token"].startswith("ca_")
        assert c.post("/api/users", json={"name": "zoe", "role": "viewer"}, headers=admin).status_code == 409
        assert c.get("/api/me", headers=bearer(made.json()["token"])).json()["name"] == "zoe"
        assert c.put("/api/users/zoe", json={"role": "editor"}, headers=admin).json()["role"] == "editor"
        assert c.put("/api/users/zoe", json={"disabled": True}, headers=admin).json()["disabled"] is True
        assert c.get("/api/me", headers=bearer(made.json()["token"])).status_code == 401
        assert c.put("/api/users/root", json={"disabled": True}, headers=admin).status_code == 400
        listed = c.get("/api/users", headers=admin).json()["users"]
        assert [u["name"] for u in listed] == ["ada", "eve", "root", "zoe"]
        assert "password" not in json.dumps(listed) and "hash" not in json.dumps(listed)


# -- serve ---------------------------------------------------------------------------------------------------


def test_serve_refuses_another_host_without_users(demo_data, tmp_path, monkeypatch):
    monkeypatch.delenv("CRASH_AGGREGATES_TOKEN", raising=False)
    result = run("serve", "--data", demo_data, "--host", "0.0.0.0", "--port", "0", "--state", tmp_path / "s.sqlite3")
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without users" in result.output
    assert len(result.stderr.strip().splitlines()) == 1 or "Usage" in result.stderr


def test_serve_says_the_shared_token_is_replaced(demo_data, tmp_path, monkeypatch):
    monkeypatch.setenv("CRASH_AGGREGATES_TOKEN", "s3cret-token-for-the-tests")
    result = run("serve", "--data", demo_data, "--port", "0", "--state", tmp_path / "s.sqlite3")
    assert result.exit_code == 2 and "replaced by user accounts" in result.output
    assert "s3cret-token-for-the-tests" not in result.output


def test_serve_with_users_needs_a_token_and_logs_no_secret(demo_data, tmp_path):
    state = tmp_path / "state.sqlite3"
    added = CliRunner().invoke(
        cli, ["users", "add", "eve", "--role", "editor", "--password-stdin", "--state", str(state)],
        input="eve-password-2\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    env = {k: v for k, v in os.environ.items() if k != "CRASH_AGGREGATES_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "crash_aggregates.cli", "serve", "--data", str(demo_data), "--port", "0",
         "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/) \(1 user\(s\), sign-in required", line)
        assert match, line
        url = match.group(1)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "api/health", timeout=30)
        assert refused.value.code == 401
        request = urllib.request.Request(url + "api/queries", headers=bearer(token), method="POST",
                                         data=json.dumps(QUERY).encode())  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201 and json.load(response)["author"] == "eve"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert token not in out + err + line and "eve-password-2" not in out + err


def test_a_server_killed_mid_save_loses_nothing_it_committed(demo_data, tmp_path):
    """SIGKILL while saves are in flight: every save answered 201 is in the file, which opens whole."""
    import sqlite3
    import threading

    from crash_aggregates.state import open_state

    state = tmp_path / "state.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != "CRASH_AGGREGATES_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "crash_aggregates.cli", "serve", "--data", str(demo_data), "--port", "0",
         "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    saved, lock, enough = [], threading.Lock(), threading.Event()
    try:
        url = re.search(r"at (http://127\.0\.0\.1:\d+/)", process.stdout.readline()).group(1)

        def save_many(worker: int):
            for i in range(1000):
                body = json.dumps({"name": f"q {worker}-{i}", "sql": f"SELECT {i}", "tags": [str(worker)]}).encode()
                request = urllib.request.Request(url + "api/queries", data=body, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        answer = json.load(response)
                except OSError:
                    return  # the server is gone
                with lock:
                    saved.append(answer)
                    if len(saved) >= 40:
                        enough.set()

        workers = [threading.Thread(target=save_many, args=(w,)) for w in range(4)]
        for worker in workers:
            worker.start()
        assert enough.wait(120), "the server saved fewer than 40 queries in 2 minutes"
        process.send_signal(signal.SIGKILL)  # saves are in flight now
        for worker in workers:
            worker.join(60)
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    db = open_state(state)  # opens (and recovers the interrupted transaction, if any)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = {r["slug"]: dict(r) for r in db.execute("SELECT * FROM saved_queries")}
        for answer in saved:  # every save the server confirmed is there, as it was confirmed
            assert rows[answer["slug"]]["sql"] == answer["sql"] and rows[answer["slug"]]["version"] == 1
        # and nothing half-written: each query has exactly its first version
        unversioned = db.execute(
            "SELECT count(*) FROM saved_queries q WHERE NOT EXISTS "
            "(SELECT 1 FROM saved_query_versions v WHERE v.query_id = q.id AND v.version = 1)"
        ).fetchone()[0]
        assert unversioned == 0 and len(rows) >= len(saved) >= 40
    finally:
        db.close()
    assert sqlite3.connect(state).execute("SELECT count(*) FROM saved_query_versions").fetchone()[0] == len(rows)
