"""The S3 store's connection: settings, one s3fs filesystem per process, listing, and errors in one sentence.

The S3 layer is fsspec's ``s3fs`` (the ``s3`` extra: ``pip install
'crash-aggregates[s3]'``), chosen over ``pyarrow.fs`` because:

- its errors arrive as Python exceptions carrying botocore's error code
  (``NoSuchBucket``, ``AccessDenied``, ``InvalidAccessKeyId``…), which
  :func:`explain` turns into one sentence naming the URL;
- credentials, endpoint and retries are botocore's: the standard AWS chain
  (environment, ``AWS_PROFILE`` and the shared files, SSO, container and
  instance roles), ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3`` and the
  profile's ``endpoint_url``, ``AWS_MAX_ATTEMPTS``/``AWS_RETRY_MODE``;
- it is fork-aware (fsspec resets its I/O loop in a forked child), which the
  embedded engine's worker pool needs; we still build one filesystem object
  per process (:func:`s3_filesystem` is keyed by process id), so a worker
  never uses sockets inherited from its parent;
- DuckDB accepts an fsspec filesystem (``conn.register_filesystem``) with no
  extension to download, and pyarrow wraps one (``FSSpecHandler``).

Nothing here imports s3fs until it is used: a local run never loads it.

Retries are set explicitly: botocore's ``standard`` mode (exponential backoff
with jitter on throttling, 5xx, timeouts and connection errors), 5 attempts
per request unless ``AWS_MAX_ATTEMPTS`` says otherwise, a 10 s connect and
60 s read timeout; on top of that s3fs re-reads a response body that broke
off mid-transfer up to 3 times.

The endpoint: ``[s3] endpoint_url`` in the config wins when set
(:func:`configure`, which the job calls through ``stores.configure``);
otherwise botocore's own settings apply (``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL``, the profile's ``endpoint_url``), and otherwise AWS
itself. :func:`configure` passes the value on through the environment
variable ``CRASH_AGGREGATES_S3_ENDPOINT_URL`` so that worker processes
(forked, spawned, or Spark's Python workers started after it) use the same
endpoint.

>>> normalize("s3://bucket/pings/")
's3://bucket/pings'
>>> split("s3://bucket/pings/x.ndjson")
('bucket', 'pings/x.ndjson')
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..location import StorageError
from . import StoreUnavailable

SCHEME = "s3://"
ENDPOINT_ENV = "CRASH_AGGREGATES_S3_ENDPOINT_URL"
DEFAULT_MAX_ATTEMPTS = 5
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
BODY_RETRIES = 3
#: Reads of S3 objects are ranged GETs of about this size (a worker holds one).
S3_BLOCK = 8 << 20


class S3Unavailable(StoreUnavailable):
    """An s3:// location was given but the s3 extra is not installed."""


def split(url: str) -> tuple[str, str]:
    """``(bucket, key)`` of an S3 URL, the key without leading or trailing slashes."""
    rest = url[len(SCHEME) :]
    bucket, _, key = rest.partition("/")
    return bucket, key.strip("/")


def normalize(url: str) -> str:
    """An S3 URL without trailing slashes (nor doubled ones after the bucket)."""
    bucket, key = split(url)
    return f"{SCHEME}{bucket}/{key}" if key else f"{SCHEME}{bucket}"


def configure(endpoint_url: str | None) -> None:
    """Use this S3 endpoint (the config's ``[s3] endpoint_url``); None: botocore's own."""
    if endpoint_url:
        os.environ[ENDPOINT_ENV] = endpoint_url
    else:
        os.environ.pop(ENDPOINT_ENV, None)


def endpoint_url() -> str | None:
    """The endpoint in force: the config's, else botocore's settings (None = AWS)."""
    return (
        os.environ.get(ENDPOINT_ENV)
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def require_s3() -> None:
    """Raise S3Unavailable with the install command when s3fs is missing."""
    try:
        import s3fs  # noqa: F401
    except ImportError:
        raise S3Unavailable("s3:// locations need the s3 extra: pip install 'crash-aggregates[s3]'") from None


_filesystems: dict = {}
#: A filesystem is rebuilt when one of these changes (a library user or a
#: test switching credentials or endpoint within one process).
_SETTINGS_ENV = (
    ENDPOINT_ENV,
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


def s3_filesystem():
    """This process's s3fs filesystem (a new one in each worker process)."""
    key = (os.getpid(), *(os.environ.get(name) for name in _SETTINGS_ENV))
    fs = _filesystems.get(key)
    if fs is None:
        require_s3()
        import s3fs

        attempts = _max_attempts()
        fs = s3fs.S3FileSystem(
            endpoint_url=os.environ.get(ENDPOINT_ENV) or None,
            skip_instance_cache=True,
            use_listings_cache=False,  # other processes change what we list
            default_block_size=S3_BLOCK,
            fixed_upload_size=True,  # equal multipart parts, as Cloudflare R2 requires
            config_kwargs={
                # total_max_attempts counts the first try, as AWS_MAX_ATTEMPTS does
                # (botocore's "max_attempts" key would count only the retries).
                "retries": {"mode": os.environ.get("AWS_RETRY_MODE", "standard"), "total_max_attempts": attempts},
                "connect_timeout": CONNECT_TIMEOUT,
                "read_timeout": READ_TIMEOUT,
            },
        )
        fs.retries = BODY_RETRIES
        _filesystems.clear()  # those of a parent process must not be used here
        _filesystems[key] = fs
    return fs


def _max_attempts() -> int:
    try:
        return max(1, int(os.environ.get("AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)))
    except ValueError:
        return DEFAULT_MAX_ATTEMPTS


def list_objects(url: str) -> dict[str, dict]:
    """Every object under an S3 URL taken as a folder, by ListObjectsV2 pages only.

    ``{"s3://bucket/key": {"size": int, "LastModified": datetime, "ETag": str}}``.
    Unlike ``fs.find`` this never falls back to a HEAD of the prefix itself
    (which a policy granting ``prefix/*`` only would deny) and caches nothing.
    A missing prefix is an empty dict; a missing bucket raises StorageError.
    """
    fs = s3_filesystem()
    bucket, key = split(url)
    request = {"Bucket": bucket, "Prefix": f"{key}/" if key else ""}
    found = {}
    while True:
        with s3_errors(url, "list"):
            page = fs.call_s3("list_objects_v2", **request)
        for obj in page.get("Contents", []):
            found[f"{SCHEME}{bucket}/{obj['Key']}"] = {
                "size": int(obj.get("Size") or 0),
                "LastModified": obj.get("LastModified"),
                "ETag": obj.get("ETag"),
            }
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return found
        request["ContinuationToken"] = token


# -- errors --------------------------------------------------------------------

CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "403"}


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and its causes (s3fs wraps botocore's ClientError, sometimes twice)."""
    seen: list[BaseException] = []
    while exc is not None and len(seen) < 5 and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def error_code(exc: BaseException) -> str | None:
    """botocore's error code (``NoSuchBucket``, ``AccessDenied``…) of a failure, if it carries one."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            error = response.get("Error") or {}
            code = error.get("Code")
            if code:
                return str(code)
    return None


def _operation(exc: BaseException) -> str | None:
    for e in _chain(exc):
        op = getattr(e, "operation_name", None)
        if op:
            return op
    return None


def explain(exc: BaseException, url: str = "") -> str:
    """One sentence saying what went wrong with an S3 request, and what to check."""
    if isinstance(exc, StorageError):
        return exc.reason
    try:
        from botocore import exceptions as bx
    except ImportError:  # pragma: no cover - s3 extra missing
        bx = None
    code = error_code(exc)
    op = _operation(exc)
    on = f" on {op}" if op else ""
    bucket = split(url)[0] if url.startswith(SCHEME) else ""
    if code in CREDENTIAL_CODES:
        return (
            f"the credentials were refused ({code}{on}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or the instance role, and that they belong to this endpoint"
        )
    if code in DENIED_CODES or (code is None and isinstance(exc, PermissionError)):
        detail = code if code and code != "403" else "HTTP 403"
        return (
            f"access denied ({detail}{on}): the credentials in use lack the permission "
            "(see docs/object-storage.md, section Permissions, for the policy), or are invalid"
        )
    if code == "PreconditionFailed" or type(exc).__name__ == "FileExpired":
        return "the object changed while it was being read (its ETag no longer matches): run again"
    if code in ("NoSuchBucket",):
        return f"the bucket {bucket or '?'} does not exist (or is on another endpoint)"
    if bx is not None:
        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
            return "no AWS credentials found (environment, AWS_PROFILE and ~/.aws files, or an instance role)"
        if isinstance(exc, bx.EndpointConnectionError) or isinstance(exc, bx.ConnectTimeoutError):
            return (
                f"cannot reach the S3 endpoint {_endpoint_of(exc)} "
                f"after {_max_attempts()} attempts ({type(exc).__name__})"
            )
        if isinstance(exc, bx.ReadTimeoutError):
            return f"the S3 endpoint {_endpoint_of(exc)} did not answer in time, also when retried with backoff"
        if isinstance(exc, bx.BotoCoreError):
            return str(exc) or type(exc).__name__
    if code in ("SlowDown", "ServiceUnavailable", "InternalError", "500", "502", "503", "504", "RequestTimeout"):
        return f"the store kept failing ({code}{on}), also when retried with backoff"
    if isinstance(exc, TimeoutError):
        return f"timed out ({exc or type(exc).__name__})"
    message = str(exc) or type(exc).__name__
    return f"{message} ({code}{on})" if code and code not in message else message


def _endpoint_of(exc: BaseException) -> str:
    """scheme://host:port of the endpoint a botocore error names, else the configured one."""
    from urllib.parse import urlsplit

    kwargs = getattr(exc, "kwargs", None) or {}
    url = kwargs.get("endpoint_url") or endpoint_url()
    if not url:
        return "of AWS"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def storage_error(url: str, exc: BaseException, action: str = "use") -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    return StorageError(url, explain(exc, url), action)


def s3_failures() -> tuple[type[BaseException], ...]:
    """Exception types that mean an S3 request failed (for ``except`` clauses)."""
    kinds: tuple[type[BaseException], ...] = (OSError,)
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        kinds += (BotoCoreError, ClientError)
    except ImportError:  # pragma: no cover
        pass
    return kinds


@contextmanager
def s3_errors(url: str, action: str = "use") -> Iterator[None]:
    """Turn an S3 failure inside the block into a StorageError naming ``url``."""
    try:
        yield
    except StorageError:
        raise
    except s3_failures() as e:
        raise storage_error(url, e, action) from None
