"""``crash-aggregates check``: exactly the planted problems fire; each is told once, by real email and webhooks.

The dataset (watchdata.py) is built with the storage module and has a
missing day, a volume drop, an ignored-share spike and a planted nightly
build regression; what must fire is known by construction. Emails go to a
real SMTP server (aiosmtpd) and webhooks to a real HTTP server, both on
127.0.0.1.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import date

import pytest
import watchdata
from helpers import run
from mailhook import HookServer, SmtpServer, self_signed

from crash_aggregates.config import load_config
from crash_aggregates.watch import command

AS_OF = "2016-03-16"
EXPECTED = {
    "missing:2016-03-12",
    "volume:2016-03-13",
    "quality:2016-03-14:malformed_json",
    f"rule:nightly main crash regression:build_id={watchdata.REGRESSION}",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return watchdata.build(tmp_path_factory.mktemp("watch") / "aggregates")


@pytest.fixture
def data(dataset, tmp_path):
    """A copy the test may change."""
    import shutil

    root = tmp_path / "aggregates"
    shutil.copytree(dataset, root)
    return root


def check(data, config, *args, state=None):
    state = state or config.parent / "state.sqlite3"
    return run("check", "--data", data, "--config", config, "--state", state, *args)


def firing(result) -> set[str]:
    doc = json.loads(result.stdout)
    return {f["key"] for f in doc["findings"] if f["state"] == "FIRING"}


def destinations(smtp: SmtpServer | None = None, hook: HookServer | None = None) -> str:
    text = ""
    if smtp:
        text += f"""
[notify.email]
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
tls = "{smtp.tls}"
sender = "crash-aggregates@example.org"
to = ["stability@example.org", "oncall@example.org"]
"""
    if hook:
        text += f"""
[[notify.webhook]]
url = "{hook.url}/hook"

[[notify.webhook]]
name = "slack"
url = "{hook.url}/slack"
format = "slack"
"""
    return text


def test_exactly_the_planted_problems_fire(dataset, tmp_path):
    config = watchdata.write_config(tmp_path / "config.toml")
    result = check(dataset, config, "--as-of", AS_OF, "--format", "json", "--no-notify")
    assert result.exit_code == 1, result.output
    assert firing(result) == EXPECTED
    doc = json.loads(result.stdout)
    states = {f["key"]: f["state"] for f in doc["findings"]}
    assert states["rule:esr main crash rate"] == "INSUFFICIENT"  # no esr usage at all: said, not fired
    assert states["rule:release main crash rate"] == "OK"  # 1 per 1,000 h against a threshold of 1.5
    # Every nightly build in the window is evaluated, not only the worst one.
    builds = {k for k in states if k.startswith("rule:nightly main crash regression:")}
    assert len(builds) == 13  # built 2016-03-02 .. 2016-03-14: used in 2016-03-09 .. 2016-03-15
    regression = next(f for f in doc["findings"] if f["key"].endswith(watchdata.REGRESSION))
    numbers = regression["numbers"]
    # 7 days x 5,000 h at 10 per 1,000 h (2016-03-12 is missing: 6 days), against 3 builds at 2.
    assert numbers["usage_hours"] == 6 * 5000 and numbers["events"] == 6 * 50
    assert numbers["baseline_rate"] == pytest.approx(2.0) and numbers["ratio"] == pytest.approx(5.0)
    assert regression["link"].startswith("http://dashboard.test/builds?stat=main_crashes&date=submission")

    text = check(dataset, config, "--as-of", AS_OF, "--no-notify")
    lines = [line for line in text.stdout.splitlines() if line.startswith("FIRING")]
    assert len(lines) == 4
    assert "submission date 2016-03-12 is not published" in text.stdout
    assert "check as of 2016-03-16: 4 firing" in text.stdout


def test_nothing_fires_on_a_clean_window(dataset, tmp_path):
    config = watchdata.write_config(tmp_path / "config.toml")
    # As of 2016-03-09: the window ends 2016-03-08, before every planted problem.
    result = check(dataset, config, "--as-of", "2016-03-09", "--format", "json", "--no-notify")
    assert result.exit_code == 0, result.output
    assert firing(result) == set()


def test_told_once_then_nothing_then_resolved(data, tmp_path):
    with SmtpServer() as smtp, HookServer() as hook:
        config = watchdata.write_config(tmp_path / "config.toml", destinations(smtp, hook))
        first = check(data, config, "--as-of", AS_OF)
        assert first.exit_code == 1, first.output
        assert "notify: email: sent 4 event(s)" in first.stderr
        [mail] = smtp.received
        assert mail.recipients == ["stability@example.org", "oncall@example.org"]
        assert mail.message["Subject"] == "[crash-aggregates] 4 firing: submission date 2016-03-12 is not published"
        body = mail.message.get_body(("plain",)).get_content()
        assert "FIRING: submission date 2016-03-12 is not published" in body
        assert f"nightly main crash regression [build_id={watchdata.REGRESSION}]" in body
        assert "ratio 5.00" in body and "30,000 usage hours" in body  # the numbers
        assert "http://dashboard.test/builds?" in body and "http://dashboard.test/health" in body
        assert "<strong>FIRING</strong>" not in body and mail.message.get_body(("html",)) is not None
        [doc] = hook.on("/hook")
        assert {e["key"] for e in doc["events"]} == EXPECTED and {e["event"] for e in doc["events"]} == {"firing"}
        regression = next(e for e in doc["events"] if e["check"] == "rule")
        assert regression["numbers"]["ratio"] == pytest.approx(5.0)
        [slack] = hook.on("/slack")
        assert slack["text"].startswith("[crash-aggregates] 4 firing") and len(slack["blocks"]) == 5

        # The next check, nothing changed: still firing (exit 1), nothing sent.
        second = check(data, config, "--as-of", AS_OF)
        assert second.exit_code == 1 and "notify:" not in second.stderr
        assert len(smtp.received) == 1 and len(hook.posts) == 2

        # The missing day arrives: its resolution is announced, once, to every destination.
        watchdata.publish(data, watchdata.MISSING)
        third = check(data, config, "--as-of", AS_OF)
        assert third.exit_code == 1
        assert len(smtp.received) == 2
        resolved = smtp.received[1].message
        assert resolved["Subject"] == "[crash-aggregates] RESOLVED: 2016-03-12 is published"
        [_, doc] = hook.on("/hook")
        assert [(e["event"], e["key"]) for e in doc["events"]] == [("resolved", "missing:2016-03-12")]
        assert check(data, config, "--as-of", AS_OF).stderr.count("notify:") == 0

    db = sqlite3.connect(tmp_path / "state.sqlite3")
    assert db.execute("SELECT count(*) FROM check_runs").fetchone()[0] == 4
    sent = db.execute("SELECT destination, event, count(*) FROM alert_notifications GROUP BY 1, 2").fetchall()
    assert sorted(sent) == [
        ("email", "firing", 4), ("email", "resolved", 1), ("slack", "firing", 4), ("slack", "resolved", 1),
        ("webhook", "firing", 4), ("webhook", "resolved", 1),
    ]  # fmt: skip


def test_refusing_smtp_is_retried_reported_and_catches_up(data, tmp_path):
    with SmtpServer() as smtp, HookServer() as hook:
        smtp.refuse = "451 4.3.0 mailbox temporarily unavailable"
        config = watchdata.write_config(tmp_path / "config.toml", destinations(smtp, hook))
        first = check(data, config, "--as-of", AS_OF)
        assert first.exit_code == 1
        assert smtp.attempts == 3 and smtp.received == []  # [notify] attempts = 3
        assert (
            "notify: email: failed after 3 attempt(s): SMTP 451 4.3.0 mailbox temporarily unavailable; "
            "its 4 event(s) are sent on the next check"
        ) in first.stderr
        # The failing destination did not stop the others.
        assert len(hook.on("/hook")) == 1 and len(hook.on("/slack")) == 1

        smtp.refuse = None
        second = check(data, config, "--as-of", AS_OF)
        assert "notify: email: sent 4 event(s)" in second.stderr
        assert "webhook" not in second.stderr  # already told
        assert len(smtp.received) == 1 and len(hook.posts) == 2

    db = sqlite3.connect(tmp_path / "state.sqlite3")
    rows = db.execute("SELECT status, attempts, error FROM alert_notifications WHERE destination = 'email'").fetchall()
    assert sorted({r[:2] for r in rows}) == [("failed", 3), ("sent", 1)]
    assert any("451" in (r[2] or "") for r in rows)


def test_a_failing_webhook_is_retried_then_reported(data, tmp_path):
    with HookServer() as hook:
        hook.fail_with = 503
        config = watchdata.write_config(tmp_path / "config.toml", destinations(hook=hook))
        result = check(data, config, "--as-of", AS_OF)
        assert hook.attempts == 6  # 3 for each of the two webhooks
        assert f"notify: webhook: failed after 3 attempt(s): {hook.url}/... answered HTTP 503" in result.stderr


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd, TLS from the start
@pytest.mark.parametrize("tls", ["starttls", "tls"])
def test_email_over_tls_with_credentials_never_shown(data, tmp_path, monkeypatch, tls):
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test server's certificate
    monkeypatch.setenv("CRASH_AGGREGATES_SMTP_USER", "watchdog")
    monkeypatch.setenv("CRASH_AGGREGATES_SMTP_PASSWORD", "s3cret-Pa55word")
    with SmtpServer(tls=tls, login=("watchdog", "s3cret-Pa55word"), cert=cert, key=key) as smtp:
        config = watchdata.write_config(tmp_path / "config.toml", destinations(smtp))
        result = check(data, config, "--as-of", AS_OF)
        assert "notify: email: sent 4 event(s)" in result.stderr, result.stderr
        assert len(smtp.received) == 1 and smtp.logins == ["watchdog"]

        monkeypatch.setenv("CRASH_AGGREGATES_SMTP_PASSWORD", "wrong-Pa55word")
        watchdata.publish(data, watchdata.MISSING)
        refused = check(data, config, "--as-of", AS_OF)
        assert "notify: email: failed after 3 attempt(s): the SMTP server refused the credentials (535)" in (
            refused.stderr
        )
    state = b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite3*"))
    for secret in ("s3cret-Pa55word", "wrong-Pa55word"):
        assert secret not in result.output + refused.output and secret.encode() not in state


def test_starttls_required_but_not_offered_is_refused(data, tmp_path):
    with SmtpServer() as smtp:  # plain SMTP, no STARTTLS
        config = watchdata.write_config(tmp_path / "config.toml", destinations(smtp).replace('"none"', '"starttls"'))
        result = check(data, config, "--as-of", AS_OF)
        assert "does not offer STARTTLS" in result.stderr and smtp.received == []


def test_backtest_finds_the_regression_on_the_dates_it_was_present(dataset, tmp_path):
    config = watchdata.write_config(tmp_path / "config.toml")
    result = run("check", "--data", dataset, "--config", config, "--backtest", "2016-03-03", "2016-03-15",
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    fired = {d["date"]: {f["key"] for f in d["firing"]} for d in doc["dates"]}
    regression = f"rule:nightly main crash regression:build_id={watchdata.REGRESSION}"
    # The regression build is used from 2016-03-09 on (built 2016-03-08): from then on, and only then.
    assert fired == {f"2016-03-{d:02d}": ({regression} if d >= 9 else set()) for d in range(3, 16)}
    assert not (tmp_path / "state.sqlite3").exists()  # a backtest remembers nothing

    text = run("check", "--data", dataset, "--config", config, "--backtest", "2016-03-03", "2016-03-15")
    assert "backtest 2016-03-03..2016-03-15: 1 finding(s) would have fired, on 7 of 13 date(s)" in text.stdout
    assert text.stdout.startswith(f"2016-03-09  nightly main crash regression [build_id={watchdata.REGRESSION}]")


@pytest.mark.parametrize(
    "args, extra, message",
    [
        (("--as-of", "2016-13-01"), "", "--as-of: invalid date"),
        (("--backtest", "2016-03-10", "2016-03-01"), "", "--backtest: 2016-03-10 is after 2016-03-01"),
        (("--backtest", "2016-03-01", "2016-03-02", "--as-of", AS_OF), "", "does not take --as-of"),
        ((), '[[alerts]]\nname = "x"\nstat = "no_such_stat"\nthreshold = 1\n', "'no_such_stat' is not a configured"),
        ((), '[notify.email]\nsmtp_host = "h"\nsender = "a@b"\nto = "c@d"\ntls = "ssl"\n', "tls must be"),
        ((), "[watchdog]\nvolume_low = 1.5\n", "volume_low < 1 < volume_high"),
    ],
)
def test_usage_and_config_errors_exit_2(dataset, tmp_path, args, extra, message):
    config = watchdata.write_config(tmp_path / "config.toml", extra)
    result = check(dataset, config, *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_state_inside_the_data_is_refused(dataset, tmp_path):
    config = watchdata.write_config(tmp_path / "config.toml")
    result = check(dataset, config, state=dataset / "state.sqlite3")
    assert result.exit_code == 2 and "inside the dataset" in result.output


def test_no_data_at_all_fires(tmp_path):
    config = watchdata.write_config(tmp_path / "config.toml")
    (tmp_path / "empty").mkdir()
    result = check(tmp_path / "empty", config, "--as-of", AS_OF, "--format", "json", "--no-notify")
    assert result.exit_code == 1 and firing(result) == {"missing:all"}


def test_current_findings_for_the_dashboard(dataset, tmp_path):
    config_path = watchdata.write_config(tmp_path / "config.toml")
    check(dataset, config_path, "--as-of", AS_OF, "--no-notify")
    found = command.current_findings(load_config(config_path), tmp_path / "state.sqlite3")
    assert {f.key for f, _ in found} == EXPECTED
    assert {since for _, since in found} == {"2016-03-16T00:00:00+00:00"}


def test_check_reads_s3(s3, dataset, tmp_path):
    s3.upload(dataset, "aggregates")
    config = watchdata.write_config(tmp_path / "config.toml")
    result = check(s3.url("aggregates"), config, "--as-of", AS_OF, "--format", "json", "--no-notify")
    assert result.exit_code == 1, result.output
    assert firing(result) == EXPECTED


def test_as_of_evaluates_a_past_day(dataset, tmp_path):
    config = watchdata.write_config(tmp_path / "config.toml")
    # As of 2016-03-14, the newest expected date is 2016-03-13: the spike of 2016-03-14 is not seen yet.
    result = check(dataset, config, "--as-of", "2016-03-14", "--format", "json", "--no-notify")
    assert firing(result) == EXPECTED - {"quality:2016-03-14:malformed_json"}
    assert json.loads(result.stdout)["as_of"] == "2016-03-14"
    assert date.fromisoformat(json.loads(result.stdout)["as_of"]) == date(2016, 3, 14)


def test_data_that_cannot_be_read_is_told_once_and_its_recovery_too(s3, dataset, tmp_path):
    from helpers import run_process
    from s3server import free_port

    s3.upload(dataset, "aggregates")
    with SmtpServer() as smtp:
        config = watchdata.write_config(tmp_path / "config.toml", destinations(smtp))
        args = ["check", "--data", s3.url("aggregates"), "--config", config, "--state", tmp_path / "state.sqlite3",
                "--as-of", AS_OF]  # fmt: skip
        assert run_process(*args).returncode == 1  # the planted problems
        told = len(smtp.received)
        # The store stops answering (here: nothing listens at its endpoint any more).
        down = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_MAX_ATTEMPTS": "1"}
        first = run_process(*args, env=down)
        assert first.returncode == 1
        assert f"FIRING        data     the aggregates at {s3.url('aggregates')} cannot be read: " in first.stdout
        [mail] = smtp.received[told:]
        assert mail.message["Subject"] == f"[crash-aggregates] FIRING: the aggregates at {s3.url('aggregates')} " \
                                          "cannot be read"  # fmt: skip
        assert run_process(*args, env=down).returncode == 1 and len(smtp.received) == told + 1  # told once
        back = run_process(*args)
        assert back.returncode == 1  # the planted problems, as before: not told again
        [resolved] = smtp.received[told + 1 :]
        subject = f"[crash-aggregates] RESOLVED: the aggregates at {s3.url('aggregates')} can be read"
        assert resolved.message["Subject"] == subject
