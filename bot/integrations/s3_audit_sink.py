"""The audit sink on S3 (or any S3-compatible store) through boto3: batches of entries written as
objects under Object Lock in compliance mode, and read back for ``audit verify --sink``.

The only module that imports boto3. Errors are translated here: a store that cannot be reached, times
out, throttles or answers 5xx is ``SinkUnavailable`` (copy later; nothing is lost, the entries stay in
Redis); one that refuses (access denied, no such bucket, no Object Lock, no credentials) is
``SinkRefused``. Neither carries a credential or a response body. Credentials come from boto3's own
chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a web identity token, an instance role).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from bot.domain.audit import AuditEntry
from bot.domain.audit_sink import (
    HEAD_NAME,
    PREVIOUS_NAME,
    Batch,
    ChainCopy,
    SinkHead,
    batch_body,
    batch_name,
    is_chain_name,
    join,
    parse_batch_name,
)
from bot.metrics import count_error
from bot.ports import SinkRefused, SinkUnavailable
from bot.settings import SinkSettings

# Answers that mean "later": the store is busy or briefly broken (S3's documented retryable codes).
_TRANSIENT = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "ServiceUnavailable"}


def sink_from_settings(settings: SinkSettings) -> S3AuditSink | None:
    """The sink BREAKGLASS_AUDIT_SINK names (at BREAKGLASS_S3_ENDPOINT_URL, if set), or None when unset."""
    if settings.sink_bucket is None:
        return None
    return S3AuditSink(settings.sink_bucket, settings.sink_prefix, settings.s3_endpoint_url)


class S3AuditSink:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # Two attempts within a call; the worker's loop retries beyond that, with backoff.
            retries={"max_attempts": 2, "mode": "standard"},
            # Object Lock PUTs need an integrity checksum: Content-MD5, set on each PUT below, which
            # every S3-compatible store takes; botocore's default CRC32 headers are not (MinIO, Ceph
            # and others refused them when botocore began sending them).
            request_checksum_calculation="when_required",
        )
        self._s3 = client or boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)

    def describe(self) -> str:
        where = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    # --- writing --------------------------------------------------------------------------------------

    def write_batch(self, chain: str, entries: Sequence[AuditEntry], retain_until: datetime) -> str:
        key = join(self.prefix, chain, batch_name(entries[0].seq, entries[-1].seq))
        self._put(key, batch_body(entries), "application/x-ndjson", retain_until)
        return key

    def write_previous(self, chain: str, previous: SinkHead, retain_until: datetime) -> None:
        self._put(
            join(self.prefix, chain, PREVIOUS_NAME), previous.to_json().encode(), "application/json", retain_until
        )

    def write_head(self, head: SinkHead, retain_until: datetime) -> None:
        self._put(join(self.prefix, HEAD_NAME), head.to_json().encode(), "application/json", retain_until)

    def _put(self, key: str, body: bytes, content_type: str, retain_until: datetime) -> None:
        self._call(
            "write " + key,
            lambda: self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),  # noqa: S324  (integrity, not secrecy)
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until,
            ),
        )

    # --- reading --------------------------------------------------------------------------------------

    def read_head(self) -> SinkHead | None:
        body = self._get(join(self.prefix, HEAD_NAME))
        if body is None:
            return None
        try:
            return SinkHead.from_json(body)
        except ValueError:
            raise SinkRefused(f"audit sink {self.describe()}: its {HEAD_NAME} is not a head record") from None

    def read_copy(self) -> tuple[list[ChainCopy], SinkHead | None]:
        chains: dict[str, ChainCopy] = {}
        for key in self._keys():
            relative = key[len(self.prefix) + 1 :] if self.prefix else key
            chain, _, name = relative.partition("/")
            if not is_chain_name(chain) or "/" in name:
                continue
            copy = chains.setdefault(chain, ChainCopy(chain, []))
            span = parse_batch_name(name)
            if span is not None:
                copy.batches.append((Batch(key, *span), self._get(key)))
            elif name == PREVIOUS_NAME:
                raw = self._get(key)
                try:
                    copy.previous = SinkHead.from_json(raw) if raw is not None else None
                except ValueError:
                    copy.previous = None
        for copy in chains.values():
            copy.batches.sort(key=lambda item: item[0].first)
        return [chains[name] for name in sorted(chains)], self.read_head()

    def _keys(self) -> list[str]:
        def listing() -> list[str]:
            keys: list[str] = []
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
            )
            for page in pages:
                keys += [item["Key"] for item in page.get("Contents", [])]
            return keys

        result: list[str] = self._call("list the copy", listing)
        return result

    def _get(self, key: str) -> bytes | None:
        def read() -> bytes | None:
            try:
                answer = self._s3.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            data: bytes = answer["Body"].read()
            return data

        result: bytes | None = self._call("read " + key, read)
        return result

    def check_lock(self) -> str:
        def read() -> dict[str, Any]:
            answer: dict[str, Any] = self._s3.get_object_lock_configuration(Bucket=self.bucket)
            return answer

        try:
            config = self._call("read the bucket's Object Lock configuration", read)
        except SinkRefused as exc:
            raise SinkRefused(f"{exc} (the bucket must be created with Object Lock enabled)") from None
        lock = config.get("ObjectLockConfiguration") or {}
        if lock.get("ObjectLockEnabled") != "Enabled":
            raise SinkRefused(f"audit sink {self.describe()}: the bucket has no Object Lock")
        return f"the bucket has Object Lock; each object is locked in compliance mode ({self.describe()})"

    # --- errors ---------------------------------------------------------------------------------------

    def _call(self, action: str, work: Any) -> Any:
        what = f"audit sink {self.describe()}: {action}"
        try:
            return work()
        except (NoCredentialsError, PartialCredentialsError):
            count_error("s3", "credentials")
            raise SinkRefused(
                f"{what}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a role)"
            ) from None
        except ClientError as exc:
            code = _code(exc)
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            count_error("s3", code or f"{status // 100}xx")
            if code in _TRANSIENT or status >= 500 or status == 429:
                raise SinkUnavailable(f"{what}: HTTP {status} {code}", delay=2.0) from None
            raise SinkRefused(f"{what}: HTTP {status} {code}") from None
        except BotoCoreError as exc:
            # Connection refused or reset, a timeout, a DNS failure: the type says which; its text may
            # hold the URL (no credentials) but is kept out all the same.
            count_error("s3", "unreachable")
            raise SinkUnavailable(f"{what}: cannot reach the store ({type(exc).__name__})", delay=2.0) from None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")
