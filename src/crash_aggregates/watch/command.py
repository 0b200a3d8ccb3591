"""What ``crash-aggregates check`` does: evaluate, print, remember, notify; and ``--backtest``.

Exit status: 0 when nothing fires, 1 when at least one check or rule fires
(in a backtest: would have fired on some date), 2 for bad arguments or
configuration (raised as :class:`WatchError` by the caller's checks).
"""

from __future__ import annotations

import email.policy
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage

from .. import stores
from ..config import Config
from ..errors import CrashAggregatesError, ExitCode
from ..state import now_text, open_state, transaction
from . import checks, dispatch, messages, notify, rules
from .findings import FIRING, INSUFFICIENT, OK, Finding

#: Lines up to SMTP's limit: a subject is not folded at its start (some readers would show a leading space).
MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)


class WatchError(CrashAggregatesError):
    """The data cannot be read or the state file cannot be used: one line, exit status 1."""


@dataclass
class Evaluation:
    as_of: date
    findings: list[Finding] = field(default_factory=list)
    #: Rules that could not be evaluated, with the reason (their findings are kept as they were).
    errors: list[str] = field(default_factory=list)
    #: Key prefixes whose findings were all evaluated (the rest of their firing findings expire).
    scopes: list[str] = field(default_factory=list)

    def firing(self) -> list[Finding]:
        return [f for f in self.findings if f.state == FIRING]


def health_link(config: Config) -> str | None:
    return f"{config.dashboard.url.rstrip('/')}/health" if config.dashboard.url else None


def evaluate(config: Config, data: str, as_of: date, data_checks: bool = True) -> Evaluation:
    """Every data check (unless ``data_checks`` is false) and every rule, as of a date."""
    from ..location import StorageError
    from ..sql import QueryError, connect

    result = Evaluation(as_of)
    watchdog = config.watch.watchdog
    stores.configure(config)
    try:
        if data_checks:
            result.findings += checks.evaluate(data, as_of, watchdog, health_link(config))
            result.scopes += ["missing:", "volume:", "quality:"]
        if config.watch.alerts:
            conn = connect(data)
            try:
                for rule in config.watch.alerts:
                    try:
                        result.findings += rules.evaluate(rule, conn, as_of, watchdog.lag_days, config.dashboard.url)
                        result.scopes.append(f"rule:{rule.name}")
                    except Exception as e:  # one rule's failure (a time limit, a bad file) leaves the others
                        result.errors.append(f"rule {rule.name!r} could not be evaluated: {_first_line(e)}")
            finally:
                conn.close()
    except (StorageError, QueryError) as e:
        raise WatchError(str(e)) from None
    except OSError as e:
        raise WatchError(f"cannot read the aggregates at {data}: {e.strerror or e}") from None
    return result


#: The finding of the data as a whole: it can be read, or not (an unreachable store, no permission).
READABLE = "data:readable"


def evaluate_readable(config: Config, data: str, as_of: date) -> Evaluation:
    """:func:`evaluate`, where data that cannot be read is itself a finding, told (and resolved) like the others.

    The findings of the other checks and rules, not evaluated then, stay as they were.
    """
    link = health_link(config)
    try:
        result = evaluate(config, data, as_of)
    except WatchError as e:
        title = f"the aggregates at {data} cannot be read"
        return Evaluation(as_of, [Finding("data", READABLE, FIRING, title, str(e), 1.0, {}, link)], scopes=[READABLE])
    result.findings.insert(0, Finding("data", READABLE, OK, f"the aggregates at {data} can be read", "", 0.0, {}, link))
    result.scopes.append(READABLE)
    return result


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def clock(as_of: date | None) -> tuple[date, datetime]:
    """The check's date and time: today and now (UTC), or ``as_of`` at midnight UTC."""
    if as_of is None:
        now = datetime.now(UTC)
        return now.date(), now
    return as_of, datetime.combine(as_of, time(0), UTC)


def print_findings(evaluation: Evaluation, fmt: str, out) -> None:
    """One line per FIRING and INSUFFICIENT finding and a summary (text), or everything as JSON."""
    counts = {s: sum(f.state == s for f in evaluation.findings) for s in (FIRING, INSUFFICIENT, OK)}
    if fmt == "json":
        doc = {
            "as_of": evaluation.as_of.isoformat(),
            "firing": counts[FIRING],
            "insufficient": counts[INSUFFICIENT],
            "ok": counts[OK],
            "errors": evaluation.errors,
            "findings": [f.as_json() for f in evaluation.findings],
        }
        out.write(json.dumps(doc, indent=2) + "\n")
        return
    for f in evaluation.firing():
        out.write(f.line() + "\n")
    for line in insufficient_lines(evaluation.findings):
        out.write(line + "\n")
    for error in evaluation.errors:
        out.write(f"ERROR         rule     {error}\n")
    out.write(
        f"check as of {evaluation.as_of}: {counts[FIRING]} firing, {counts[INSUFFICIENT]} insufficient, "
        f"{counts[OK]} ok\n"
    )


def _short(f: Finding) -> str:
    """What an INSUFFICIENT finding is about, in a few characters: its group, or its date."""
    group = f.numbers.get("group")
    if group:
        return ", ".join(f"{k}={v}" for k, v in group.items())
    return f.numbers.get("date") or f.title


def insufficient_lines(findings: list[Finding]) -> list[str]:
    """One line per check or rule with too little data: in full when it is one finding, else summed up."""
    groups: dict[tuple, list[Finding]] = {}
    for f in findings:
        if f.state == INSUFFICIENT:
            groups.setdefault((f.check, f.rule), []).append(f)
    lines = []
    for (check_name, rule), found in groups.items():
        if len(found) == 1:
            lines.append(found[0].line())
            continue
        shown = ", ".join(_short(f) for f in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        what = f"{rule}: {len(found)} groups" if rule else f"{len(found)} dates"
        lines.append(f"{INSUFFICIENT:<13} {check_name:<8} {what} not evaluated for lack of data ({shown})")
    return lines


def stale_test(config: Config, evaluation: Evaluation) -> Callable[[str], bool]:
    """Which keys absent from this evaluation are no longer evaluated at all (so they expire)."""
    names = {f"rule:{r.name}" for r in config.watch.alerts}

    def stale(key: str) -> bool:
        if key.startswith("rule:"):
            rule = next((n for n in names if key == n or key.startswith(n + ":")), None)
            return rule is None or rule in evaluation.scopes
        return any(key.startswith(s) for s in evaluation.scopes)

    return stale


def remember_and_notify(config: Config, evaluation: Evaluation, state_path, now: datetime, data: str, send: bool,
                        err) -> None:  # fmt: skip
    """Save the evaluation in the state file and send what each destination has not been told."""
    from ..state import StateError

    try:
        db = open_state(state_path)
    except StateError as e:
        raise WatchError(str(e)) from None
    try:
        dispatch.record(db, evaluation.findings, now, stale_test(config, evaluation))
        summary = [
            {"key": f.key, "check": f.check, "rule": f.rule, "state": f.state, "title": f.title}
            for f in evaluation.findings
        ]
        with transaction(db):
            db.execute(
                "INSERT INTO check_runs (at, as_of, data, firing, summary) VALUES (?, ?, ?, ?, ?)",
                (now_text(now), evaluation.as_of.isoformat(), data, len(evaluation.firing()), json.dumps(summary)),
            )
        if send:
            settings = config.watch.notify
            for dest in settings.destinations:
                events = dispatch.pending(db, dest.name, now, settings.renotify_hours, settings.worse_factor)
                if not events:
                    continue
                outcome = notify.deliver(dest, _builder(events, evaluation.as_of, config.dashboard.url), settings)
                dispatch.log_attempt(db, dest.name, events, outcome.ok, outcome.attempts, outcome.error, now)
                if outcome.ok:
                    dispatch.delivered(db, dest.name, events, now)
                    err.write(f"notify: {dest.name}: sent {len(events)} event(s)\n")
                else:
                    err.write(
                        f"notify: {dest.name}: failed after {outcome.attempts} attempt(s): {outcome.error}; "
                        f"its {len(events)} event(s) are sent on the next check\n"
                    )
    finally:
        db.close()


def _builder(events, as_of: date, dashboard: str | None):
    def build(fmt: str):
        if fmt == "email":
            message = EmailMessage(policy=MAIL_POLICY)
            message["Subject"] = messages.subject(events)
            message.set_content(messages.text(events, as_of, dashboard))
            message.add_alternative(messages.html_body(events, as_of, dashboard), subtype="html")
            return message
        if fmt == "slack":
            return messages.slack_payload(events, as_of, dashboard)
        return messages.json_payload(events, as_of, dashboard)

    return build


def check(
    config: Config,
    data: str,
    as_of: date | None,
    fmt: str,
    state_path,
    send: bool = True,
    out=None,
    err=None,
) -> int:
    """``crash-aggregates check``: returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    today, now = clock(as_of)
    evaluation = evaluate_readable(config, data, today)
    print_findings(evaluation, fmt, out)
    for error in evaluation.errors:
        err.write(f"error: {error}\n")
    remember_and_notify(config, evaluation, state_path, now, data, send, err)
    return ExitCode.FIRING if evaluation.firing() else ExitCode.OK


def backtest(config: Config, data: str, first: date, last: date, fmt: str, out=None) -> int:
    """Replay the rules with each date from ``first`` to ``last`` as the newest one evaluated.

    Nothing is remembered or sent. A date D is evaluated as ``check --as-of``
    D + ``lag_days`` would have: its rules' windows end with D.
    """
    out = out or sys.stdout
    lag = config.watch.watchdog.lag_days
    fired, days = [], []
    day = first
    while day <= last:
        evaluation = evaluate(config, data, day + timedelta(days=lag), data_checks=False)
        days.append((day, evaluation))
        fired += [(day, f) for f in evaluation.firing()]
        day += timedelta(days=1)
    if fmt == "json":
        doc = {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "dates": [
                {
                    "date": d.isoformat(),
                    "firing": [f.as_json() for f in e.firing()],
                    "insufficient": sum(f.state == INSUFFICIENT for f in e.findings),
                    "ok": sum(f.state == OK for f in e.findings),
                    "errors": e.errors,
                }
                for d, e in days
            ],
        }
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        for d, e in days:
            for f in e.firing():
                out.write(f"{d}  {f.title}: {f.detail}\n")
            for error in e.errors:
                out.write(f"{d}  ERROR {error}\n")
        keys = {f.key for _, f in fired}
        out.write(
            f"backtest {first}..{last}: {len(keys)} finding(s) would have fired, on {len({d for d, _ in fired})} "
            f"of {len(days)} date(s)\n"
        )
    return ExitCode.FIRING if fired else ExitCode.OK


def status(config: Config, state_path) -> dict | None:
    """The watchdog as of the last ``check`` (for the dashboard's Data health view); None before any.

    ``{"checked_at", "as_of", "firing": [finding as JSON, with "since"], "rules": [{"name", "OK",
    "FIRING", "INSUFFICIENT"}], "checks": {check: {state: count}}}``. Reads the state file only if
    it exists (a dashboard never creates one).
    """
    from pathlib import Path

    if state_path is None or not Path(state_path).exists():
        return None
    db = open_state(state_path)
    try:
        last = db.execute("SELECT at, as_of, summary FROM check_runs ORDER BY id DESC LIMIT 1").fetchone()
        if last is None:
            return None
        firing = [{**f.as_json(), "since": since} for f, since in dispatch.firing(db)]
    finally:
        db.close()
    rules = {r.name: dict.fromkeys((OK, FIRING, INSUFFICIENT), 0) for r in config.watch.alerts}
    checks: dict[str, dict[str, int]] = {}
    for entry in json.loads(last["summary"]):
        if entry.get("rule"):
            rules.setdefault(entry["rule"], dict.fromkeys((OK, FIRING, INSUFFICIENT), 0))[entry["state"]] += 1
        else:
            counts = checks.setdefault(entry.get("check") or entry["key"].split(":")[0], {})
            counts[entry["state"]] = counts.get(entry["state"], 0) + 1
    return {
        "checked_at": last["at"],
        "as_of": last["as_of"],
        "firing": firing,
        "rules": [{"name": name, **counts} for name, counts in rules.items()],
        "checks": checks,
    }


def current_findings(config: Config, state_path) -> list[tuple[Finding, str]]:
    """The findings firing as of the last ``check`` (for the dashboard's Data health view), with since when."""
    db = open_state(state_path)
    try:
        return dispatch.firing(db)
    finally:
        db.close()


def report(
    config: Config,
    data: str,
    as_of: date | None,
    days: int,
    send: bool,
    to: tuple[str, ...] = (),
    output: str | None = None,
    state_path=None,
    out=None,
    err=None,
) -> int:
    """``crash-aggregates report``: build the digest; send it, write it to a file, or print its text."""
    import dataclasses
    from pathlib import Path

    from ..location import StorageError
    from ..sql import QueryError, connect
    from . import report as digest_report

    out, err = out or sys.stdout, err or sys.stderr
    today, _ = clock(as_of)
    findings = []
    if state_path is not None and Path(state_path).exists():
        findings = current_findings(config, state_path)
    stores.configure(config)
    try:
        conn = connect(data)
    except (StorageError, QueryError) as e:
        raise WatchError(str(e)) from None
    try:
        digest = digest_report.build(config, conn, today, days, findings)
    finally:
        conn.close()
    message = digest_report.message(digest, MAIL_POLICY)
    if output:
        Path(output).write_bytes(message.as_bytes())
        err.write(f"report: wrote {output}\n")
    if not send:
        if not output:
            out.write(digest_report.text(digest))
        return ExitCode.OK
    failed = False
    for dest in config.watch.notify.emails():
        if to:
            dest = dataclasses.replace(dest, to=tuple(to))
        outcome = notify.deliver(dest, lambda fmt: _copy(message), config.watch.notify)
        if outcome.ok:
            err.write(f"report: {dest.name}: sent to {', '.join(dest.to)}\n")
        else:
            failed = True
            err.write(f"report: {dest.name}: failed after {outcome.attempts} attempt(s): {outcome.error}\n")
    return ExitCode.FAILED if failed else ExitCode.OK


def _copy(message: EmailMessage) -> EmailMessage:
    """A fresh copy for each attempt (sending sets From and To)."""
    return email.message_from_bytes(message.as_bytes(), _class=EmailMessage, policy=MAIL_POLICY)
