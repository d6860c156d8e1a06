"""Start-up stays cheap: importing the CLI (what ``fleet --help`` and ``fleet --version`` pay for) loads
no cloud SDK, no kubernetes client and no simulated fleet. A structural check, not a timing: the figures
are ``benchmarks/startup.py``'s."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("boto3", "botocore", "hvac", "google.auth", "kubernetes", "fleet.sim", "pydantic_settings", "trio")

PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_by(module: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["fleet.cli.app", "fleet"])
def test_importing_the_cli_loads_no_heavy_dependency(module):
    loaded = _loaded_by(module)
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert not heavy, f"import {module} loads {heavy}"


def test_the_facade_still_gives_settings_and_version_on_first_use():
    import fleet

    assert fleet.FleetSettings.__name__ == "FleetSettings"
    assert fleet.__version__
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = fleet.no_such_name  # type: ignore[attr-defined]


def test_a_run_loads_no_aws_sdk_unless_its_inventory_lists_eks_clusters():
    # `fleet run` imports the engine and the inventory; boto3 alone was a quarter of a second of it.
    loaded = _loaded_by("fleet.engine.run, fleet.inventory, fleet.cli.playbooks")
    assert not sorted(m for m in loaded if m.split(".")[0] in ("boto3", "botocore", "s3transfer"))
