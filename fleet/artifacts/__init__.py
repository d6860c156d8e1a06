"""The artifact store: files produced by steps (pod outputs, stored lists), a local directory by
default, behind one interface so S3 can back it."""

from fleet.artifacts.local import LocalArtifactStore
from fleet.artifacts.s3 import S3ArtifactStore
from fleet.artifacts.store import ArtifactError, ArtifactRef, ArtifactStore, artifact_key, key_from_uri

__all__ = [
    "ArtifactError",
    "ArtifactRef",
    "ArtifactStore",
    "LocalArtifactStore",
    "S3ArtifactStore",
    "artifact_key",
    "key_from_uri",
]
