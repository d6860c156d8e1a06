"""The real OpenBao dev server for the Vault steps' tests (``tests/services.py``)."""

from tests.services import openbao

__all__ = ["openbao"]
