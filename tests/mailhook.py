"""Real receivers on 127.0.0.1 for the watchdog's tests: an SMTP server (aiosmtpd) and a webhook server.

``SmtpServer`` records every message it accepts (parsed), can refuse
(``refuse = "451 ..."``) to test retries, and can offer STARTTLS or speak
TLS from the start with a self-signed certificate, and require a login.
``HookServer`` records every JSON document POSTed to it, and can answer with
an error status.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from s3server import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage
    raw: bytes


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        self.server.attempts += 1
        if self.server.refuse:
            return self.server.refuse
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.server.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, envelope.content))
        return "250 Message accepted"


@dataclass
class SmtpServer:
    tls: str = "none"  # none | starttls | tls
    login: tuple[str, str] | None = None
    cert: Path | None = None
    key: Path | None = None
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    logins: list[str] = field(default_factory=list)
    refuse: str | None = None

    def __post_init__(self):
        self.port = free_port()
        kwargs = {}
        if self.tls != "none":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, self.key)
            if self.tls == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if self.login:
            # With TLS from the start aiosmtpd does not count the session as TLS, so it
            # would not offer AUTH at all; the transport is encrypted either way.
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=self.tls == "starttls")
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == (
            self.login
        )
        self.logins.append(auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?")
        return AuthResult(success=ok, handled=False)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate and key for ``host`` (an IP SAN), written under ``folder``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crash-aggregates test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class HookServer:
    """Records the JSON POSTed to any path; ``fail_with`` makes it answer that status instead."""

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        self.fail_with: int | None = None
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                hook.attempts += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hook.fail_with:
                    self.send_response(hook.fail_with)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                hook.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def on(self, path: str) -> list[dict]:
        return [doc for p, doc in self.posts if p == path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
