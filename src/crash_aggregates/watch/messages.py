"""What a notification says: one message per check and destination, holding every event for it.

The same events become an email (plain text and HTML), a generic JSON
document, or a Slack incoming-webhook payload. Each event carries the
finding, its numbers in words (rate, interval, usage hours, baseline), and
the link to the dashboard view that shows it.
"""

from __future__ import annotations

import html
from datetime import date

from .dispatch import Event
from .findings import json_safe

SOURCE = "crash-aggregates"
HEADINGS = {"firing": "FIRING", "worse": "WORSE", "reminder": "STILL FIRING", "resolved": "RESOLVED"}


def subject(events: list[Event]) -> str:
    """The email subject: the one event, or counts and the first title.

    >>> from crash_aggregates.watch.findings import Finding
    >>> e = Event("firing", Finding("missing", "missing:2016-03-12", "FIRING", "2016-03-12 is not published", ""), "")
    >>> subject([e])
    '[crash-aggregates] FIRING: 2016-03-12 is not published'
    >>> subject([e, Event("resolved", e.finding, "")])
    '[crash-aggregates] 1 firing, 1 resolved: 2016-03-12 is not published'
    """
    if len(events) == 1:
        return f"[{SOURCE}] {HEADINGS[events[0].kind]}: {events[0].finding.title}"
    counts: dict[str, int] = {}
    for e in events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    parts = ", ".join(f"{n} {HEADINGS[k].lower()}" for k, n in counts.items())
    return f"[{SOURCE}] {parts}: {events[0].finding.title}"


def _what(e: Event) -> str:
    return f"{HEADINGS[e.kind]}: {e.finding.title}"


def text(events: list[Event], as_of: date, dashboard: str | None) -> str:
    """The plain-text body."""
    lines = [f"crash-aggregates check as of {as_of} (UTC)", ""]
    for e in events:
        lines.append(_what(e))
        if e.finding.detail:
            lines.append(f"  {e.finding.detail}")
        if e.kind != "resolved" and e.since:
            lines.append(f"  firing since {e.since}")
        if e.finding.link:
            lines.append(f"  {e.finding.link}")
        lines.append("")
    if dashboard:
        lines.append(f"Dashboard: {dashboard}")
    return "\n".join(lines).rstrip() + "\n"


def html_body(events: list[Event], as_of: date, dashboard: str | None) -> str:
    """The HTML body: one block per event, colours for the state, links."""
    colours = {"firing": "#b00020", "worse": "#b00020", "reminder": "#b06000", "resolved": "#1b7f3b"}
    blocks = []
    for e in events:
        f = e.finding
        link = f'<br><a href="{html.escape(f.link)}">Open in the dashboard</a>' if f.link else ""
        since = f"<br><small>firing since {html.escape(e.since)}</small>" if e.kind != "resolved" and e.since else ""
        blocks.append(
            f'<div style="margin:0 0 14px 0;padding:8px 12px;border-left:4px solid {colours[e.kind]}">'
            f'<strong style="color:{colours[e.kind]}">{HEADINGS[e.kind]}</strong> '
            f"<strong>{html.escape(f.title)}</strong>"
            f"<br>{html.escape(f.detail)}{since}{link}</div>"
        )
    footer = f'<p><a href="{html.escape(dashboard)}">Dashboard</a></p>' if dashboard else ""
    return (
        '<!doctype html><html><body style="font-family:sans-serif;font-size:14px">'
        f"<p>crash-aggregates check as of {as_of} (UTC)</p>{''.join(blocks)}{footer}</body></html>"
    )


def json_payload(events: list[Event], as_of: date, dashboard: str | None) -> dict:
    """The generic webhook's document."""
    return {
        "source": SOURCE,
        "as_of": as_of.isoformat(),
        "dashboard": dashboard,
        "events": [
            {"event": e.kind, "firing_since": e.since or None, **json_safe(e.finding.as_json())} for e in events
        ],
    }


def _slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(events: list[Event], as_of: date, dashboard: str | None) -> dict:
    """A Slack incoming-webhook payload (``text`` for notifications, ``blocks`` for the message)."""
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": subject(events)[:150]}}]
    for e in events:
        f = e.finding
        body = f"*{_slack_escape(_what(e))}*\n{_slack_escape(f.detail)}"
        if f.link:
            body += f"\n<{f.link}|Open in the dashboard>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}})
    return {"text": subject(events), "blocks": blocks[:50]}
