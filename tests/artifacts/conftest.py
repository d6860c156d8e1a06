"""moto in server mode for the S3 store tests: see ``tests/services.py``."""

from tests.services import moto, moto_server

__all__ = ["moto", "moto_server"]
