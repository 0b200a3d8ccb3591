"""Sending: email over SMTP, and webhooks (JSON or Slack), each retried with backoff.

SMTP: ``tls = "starttls"`` (the default; port 587) upgrades the connection
with STARTTLS and refuses to go on without it, ``"tls"`` connects over TLS
(port 465), ``"none"`` sends in the clear (a relay on localhost). Server
certificates are checked against the system's trusted CAs. Credentials come
from ``$CRASH_AGGREGATES_SMTP_USER`` and ``$CRASH_AGGREGATES_SMTP_PASSWORD``
(both or neither), never from the config file, and no message or log line
contains them.

A destination that fails is tried ``[notify] attempts`` times in all, with
waits of ``backoff_seconds``, then twice that, and so on; then its failure is
reported and the next destination is tried all the same.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from ..errors import CrashAggregatesError
from .settings import EmailDestination, Notify, WebhookDestination

USER_ENV = "CRASH_AGGREGATES_SMTP_USER"
PASSWORD_ENV = "CRASH_AGGREGATES_SMTP_PASSWORD"


class DeliveryError(CrashAggregatesError):
    """A destination refused or could not be reached (the message says why, without secrets)."""


@dataclass
class Outcome:
    destination: str
    ok: bool
    attempts: int
    error: str | None = None


def credentials() -> tuple[str, str] | None:
    """The SMTP user and password from the environment; None when neither is set."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if not user and not password:
        return None
    if not user or not password:
        raise DeliveryError(f"set both {USER_ENV} and {PASSWORD_ENV}, or neither")
    return user, password


def tls_context() -> ssl.SSLContext:
    """The system's trusted CAs (OpenSSL's ``$SSL_CERT_FILE`` replaces them, e.g. with a company's own CA)."""
    return ssl.create_default_context()


def send_email(dest: EmailDestination, message: EmailMessage, timeout: float) -> None:
    """Deliver one message; raises DeliveryError."""
    message["From"] = dest.sender
    message["To"] = ", ".join(dest.to)
    secret = None
    try:
        secret = credentials()
        if dest.tls == "tls":
            server = smtplib.SMTP_SSL(dest.smtp_host, dest.smtp_port, timeout=timeout, context=tls_context())
        else:
            server = smtplib.SMTP(dest.smtp_host, dest.smtp_port, timeout=timeout)
        with server:
            if dest.tls == "starttls":
                server.ehlo()
                if not server.has_extn("starttls"):
                    raise DeliveryError(f'{dest.smtp_host}:{dest.smtp_port} does not offer STARTTLS (tls = "starttls")')
                server.starttls(context=tls_context())
                server.ehlo()
            if secret is not None:
                server.login(*secret)
            refused = server.send_message(message, from_addr=dest.sender, to_addrs=list(dest.to))
            if refused:
                raise DeliveryError(f"recipients refused: {', '.join(sorted(refused))}")
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as e:
        raise DeliveryError(f"the SMTP server refused the credentials ({e.smtp_code})") from None
    except smtplib.SMTPResponseException as e:
        reply = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        raise DeliveryError(f"SMTP {e.smtp_code} {_scrub(reply, secret)}") from None
    except smtplib.SMTPRecipientsRefused as e:
        raise DeliveryError(f"recipients refused: {', '.join(sorted(e.recipients))}") from None
    except (smtplib.SMTPException, OSError) as e:
        raise DeliveryError(
            f"cannot send through {dest.smtp_host}:{dest.smtp_port}: {_scrub(str(e), secret)}"
        ) from None


def _scrub(text: str, secret: tuple[str, str] | None) -> str:
    """Remove the credentials from a server's reply, should it echo them."""
    if secret:
        for value in secret:
            text = text.replace(value, "***")
    return text.strip() or "(no reason given)"


def post_json(url: str, payload: dict, timeout: float) -> None:
    """POST a JSON document; raises DeliveryError unless the answer is 2xx."""
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "crash-aggregates"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as e:
        raise DeliveryError(f"{_safe_url(url)} answered HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DeliveryError(f"cannot reach {_safe_url(url)}: {reason}") from None


def _safe_url(url: str) -> str:
    """A webhook URL without its path: Slack's carry the secret there.

    >>> _safe_url("https://hooks.slack.com/services/T000/B000/XXXX")
    'https://hooks.slack.com/...'
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/..."


def with_retries(
    send: Callable[[], None], notify: Notify, sleep: Callable[[float], None] = time.sleep
) -> tuple[int, str | None]:
    """Call ``send`` until it succeeds or the attempts run out; ``(attempts, last error or None)``."""
    error = None
    for attempt in range(1, notify.attempts + 1):
        try:
            send()
            return attempt, None
        except DeliveryError as e:
            error = str(e)
        if attempt < notify.attempts:
            sleep(notify.backoff_seconds * 2 ** (attempt - 1))
    return notify.attempts, error


def deliver(dest: EmailDestination | WebhookDestination, build: Callable[[str], object], notify: Notify) -> Outcome:
    """Send to one destination, with retries; ``build(format)`` makes the message (email, json or slack)."""
    if isinstance(dest, EmailDestination):

        def send():
            send_email(dest, build("email"), notify.timeout_seconds)

    else:

        def send():
            post_json(dest.url, build(dest.format), notify.timeout_seconds)

    attempts, error = with_retries(send, notify)
    return Outcome(dest.name, error is None, attempts, error)
