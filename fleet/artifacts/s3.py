"""An artifact store in an S3 bucket (boto3), behind the same interface as the local one.

boto3 is synchronous: every call runs in a worker thread under a ``CapacityLimiter``. botocore errors
become fleet errors in ``fleet.boundary.aws``: a missing object is an ``InputError``, anything else an
``ArtifactError`` with the service's message.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from fleet.artifacts.local import sha256_of
from fleet.artifacts.store import CHUNK, ArtifactError, ArtifactRef, check_key
from fleet.boundary.aws import aws_problem
from fleet.errors import InputError

T = TypeVar("T")
SHA_METADATA = "sha256"


class S3ArtifactStore:
    """Objects ``s3://bucket/prefix<key>``; each carries its sha256 as object metadata."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        client: Any = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        limiter: trio.CapacityLimiter | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        if client is None:
            import boto3  # here, not at start-up: most runs never touch S3

            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self.client = client
        self.limiter = limiter or trio.CapacityLimiter(8)

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _call(self, fn: Callable[[], T], key: str) -> T:
        def guarded() -> T:
            try:
                return fn()
            except Exception as e:
                problem = aws_problem(e, "S3")
                if problem is None:
                    raise
                where = f"s3://{self.bucket}/{self.prefix}"
                if problem.kind == "not_found":
                    raise InputError(f"artifact {key!r} does not exist in {where}") from e
                raise ArtifactError(f"artifact {key!r} in {where}: {problem}") from e

        return await trio.to_thread.run_sync(guarded, limiter=self.limiter)

    async def put_file(self, key: str, source: Path) -> ArtifactRef:
        target = self.object_key(key)

        def put() -> ArtifactRef:
            size, sha = sha256_of(source)
            self.client.upload_file(str(source), self.bucket, target, ExtraArgs={"Metadata": {SHA_METADATA: sha}})
            return ArtifactRef(key=key, size=size, sha256=sha)

        return await self._call(put, key)

    async def stat(self, key: str) -> ArtifactRef:
        target = self.object_key(key)

        def head() -> ArtifactRef:
            head = self.client.head_object(Bucket=self.bucket, Key=target)
            sha = (head.get("Metadata") or {}).get(SHA_METADATA)
            if not sha:
                digest = hashlib.sha256()
                body = self.client.get_object(Bucket=self.bucket, Key=target)["Body"]
                while chunk := body.read(CHUNK):
                    digest.update(chunk)
                sha = digest.hexdigest()
            return ArtifactRef(key=key, size=int(head["ContentLength"]), sha256=str(sha))

        return await self._call(head, key)

    async def read_chunks(self, key: str) -> AsyncIterator[bytes]:
        target = self.object_key(key)
        body = await self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=target)["Body"], key)
        try:
            while chunk := await self._call(lambda: body.read(CHUNK), key):
                yield chunk
        finally:
            body.close()
