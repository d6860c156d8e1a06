"""Real services (OpenBao, moto, a Google token endpoint) for these tests: see ``tests/services.py``."""

from tests.services import google_endpoint, moto, moto_server, openbao, private_tmp, sim_fleet

__all__ = ["google_endpoint", "moto", "moto_server", "openbao", "private_tmp", "sim_fleet"]
