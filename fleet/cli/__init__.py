"""The ``fleet`` command line: the only place that renders to the terminal.

Each command group lives in its own module and is registered on the Typer app in ``app.py``.
"""
