"""The S3 artifact store against moto in server mode (real HTTP)."""

from __future__ import annotations

import hashlib

import boto3
import pytest

from fleet.artifacts import S3ArtifactStore, artifact_key
from fleet.errors import InputError


@pytest.fixture
def bucket(moto):
    client = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="fleet-artifacts")
    return client


async def test_put_stat_read_round_trip(bucket, tmp_path):
    store = S3ArtifactStore("fleet-artifacts", prefix="runs/", client=bucket)
    data = bytes(range(256)) * 20000
    source = tmp_path / "x.bin"
    source.write_bytes(data)
    key = artifact_key("run", "sim-0", "step", "1", "dir/é x.bin")
    ref = await store.put_file(key, source)
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert await store.stat(key) == ref
    assert b"".join([chunk async for chunk in store.read_chunks(key)]) == data
    assert bucket.head_object(Bucket="fleet-artifacts", Key="runs/" + key)["ContentLength"] == len(data)


async def test_missing_object_is_an_input_error(bucket):
    store = S3ArtifactStore("fleet-artifacts", client=bucket)
    with pytest.raises(InputError, match="does not exist"):
        await store.stat("nope/x")
