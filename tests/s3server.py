"""A real S3 API on loopback for the tests: moto's standalone server, with IAM enforced.

The server runs as a subprocess on a free 127.0.0.1 port. Before it starts
enforcing authentication, two IAM users are made: ``writer`` (every S3 and
IAM action, so tests can make more users) and ``reader`` (GetObject and
ListBucket only), so that wrong credentials and a permission denied on write
are answered as AWS would answer them.

``FaultProxy`` sits between a client and the server: it can answer some
requests with a 503 SlowDown or a 500 InternalError before the server sees
them (transient errors to retry), drop the connection halfway through a
request's body, and records every request it forwards.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Keys:
    access_key: str
    secret_key: str


@dataclass
class MotoServer:
    endpoint: str
    process: subprocess.Popen
    writer: Keys
    reader: Keys

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_moto(log: Path) -> MotoServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
            break
        except OSError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto server did not start: {log.read_text()[-2000:]}") from error
            time.sleep(0.2)
    try:
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )

        writer = make_user(iam, "writer", allow(["s3:*", "iam:*"]))
        reader = make_user(iam, "reader", allow(["s3:GetObject", "s3:ListBucket"]))
        # From now on every request must be signed by a known key and allowed.
        request = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(request, timeout=10).read()
    except BaseException:
        process.kill()
        raise
    return MotoServer(endpoint, process, writer, reader)


@dataclass
class S3:
    """A test's bucket on the server (the ``s3`` fixture of conftest.py)."""

    endpoint: str
    bucket: str
    server: object

    def url(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    @property
    def fs(self):
        from crash_aggregates.stores import s3_client

        return s3_client.s3_filesystem()

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k.split("/", 1)[1] for k in self.fs.find(f"{self.bucket}/{prefix}"))

    def upload(self, local: Path, prefix: str) -> None:
        """Copy a local folder tree under s3://bucket/prefix/."""
        for path in sorted(local.rglob("*")):
            if path.is_file():
                self.fs.pipe_file(f"{self.bucket}/{prefix}/{path.relative_to(local).as_posix()}", path.read_bytes())


def use_keys(monkeypatch, keys) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_key)


def allow(actions: list[str]) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}


def make_user(iam, name: str, policy: dict) -> Keys:
    """An IAM user with one inline policy, and its access key."""
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


#: What ``FaultProxy.fault`` may answer, besides None (forward the request) and a status:
#: close the connection halfway through the request's body, without an answer (the
#: request never reaches the server).
DROP = "drop"


class FaultProxy:
    """Forwards to ``target``; some requests fail as the attributes below say, the log records them.

    ``always``: a status to answer every request with. ``fail_first_of_each=True``
    fails the first attempt of every third distinct request (method, path and
    range), so each of those is retried once. ``fault``: a callable given each
    request's method and path that answers None (forward it), a status (500,
    503, ...) or ``DROP``. ``failures`` counts the requests failed.
    """

    def __init__(self, target: str):
        self.target = target.removeprefix("http://")
        self.log: list[tuple[str, str, str | None, int]] = []
        self.failures = 0
        self.always: int | None = None  # a status to answer every request with
        self.fail_first_of_each = False
        self.fault: Callable[[str, str], int | str | None] | None = None
        self._seen: set = set()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                status = proxy._fault(self.command, self.path, self.headers.get("Range"))
                if status == DROP:  # mid-body: half of it read, then the connection closed
                    self.rfile.read(length // 2)
                    self.close_connection = True
                    return
                body = self.rfile.read(length) if length else b""
                if status:
                    code = "SlowDown" if status == 503 else "InternalError"
                    payload = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                        f"<Message>injected by the test proxy</Message></Error>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.target, timeout=30)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("connection", "proxy-connection", "expect")
                }
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                # A HEAD answer's Content-Length is the object's size, not its (empty) body's.
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()
                with proxy._lock:
                    proxy.log.append((self.command, self.path, self.headers.get("Range"), response.status))

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _fault(self, method: str, path: str, byte_range: str | None) -> int | str | None:
        with self._lock:
            if self.fault and (answer := self.fault(method, path)):
                self.failures += 1
                return answer
            if self.always:
                self.failures += 1
                return self.always
            if self.fail_first_of_each:
                key = (method, path, byte_range)
                if key not in self._seen:
                    self._seen.add(key)
                    if len(self._seen) % 3 == 1:
                        self.failures += 1
                        return 503 if self.failures % 2 else 500
        return None

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
