"""The local artifact store."""

from __future__ import annotations

import hashlib

import pytest

from fleet.artifacts import LocalArtifactStore, artifact_key, key_from_uri
from fleet.errors import InputError


async def test_put_stat_read_round_trip(tmp_path):
    store = LocalArtifactStore(tmp_path / "store")
    source = tmp_path / "src.bin"
    data = bytes(range(256)) * 5000
    source.write_bytes(data)
    key = artifact_key("run 1", "sim-0", "step/a", "1", "dir/é x.bin")
    ref = await store.put_file(key, source)
    assert ref.size == len(data)
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert key_from_uri(ref.uri) == key
    assert await store.stat(key) == ref
    assert b"".join([chunk async for chunk in store.read_chunks(key)]) == data


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", ""])
def test_bad_keys_are_input_errors(key):
    with pytest.raises(InputError):
        key_from_uri("artifact://" + key)


async def test_missing_artifact_is_an_input_error(tmp_path):
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        await store.stat("run/none.txt")
