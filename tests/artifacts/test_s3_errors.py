"""The S3 store's botocore errors, against moto: chained from the library's exception, classified by
``fleet.boundary.aws``."""

from __future__ import annotations

import boto3
import boto3.exceptions
import botocore.exceptions
import pytest

from fleet.artifacts import ArtifactError, S3ArtifactStore
from fleet.errors import InputError


async def test_a_missing_bucket_is_an_artifact_error_chained_from_botocore(moto, tmp_path):
    client = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    store = S3ArtifactStore("no-such-bucket", client=client)
    source = tmp_path / "x.txt"
    source.write_text("x")
    with pytest.raises(ArtifactError) as caught:
        await store.put_file("x", source)
    # upload_file wraps the ClientError in boto3's S3UploadFailedError; the message comes from the ClientError.
    assert isinstance(caught.value.__cause__, boto3.exceptions.S3UploadFailedError)
    assert str(caught.value).startswith("artifact 'x' in s3://no-such-bucket/: S3 answered NoSuchBucket: ")


async def test_a_missing_object_is_an_input_error_chained_from_botocore(moto):
    client = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="errors-bucket")
    store = S3ArtifactStore("errors-bucket", client=client)
    with pytest.raises(InputError, match="artifact 'gone' does not exist in s3://errors-bucket/") as caught:
        await store.stat("gone")
    assert isinstance(caught.value.__cause__, botocore.exceptions.ClientError)
