"""The package version: the one place it is written (``pyproject.toml`` reads it from here), so that
``fleet --version`` needs no package-metadata lookup (``importlib.metadata`` costs more than the rest
of ``--version``)."""

__version__ = "0.1.0"
