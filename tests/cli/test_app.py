import subprocess
import sys

import fleet


def test_version_flag_prints_the_package_version():
    out = subprocess.run([sys.executable, "-m", "fleet", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fleet {fleet.__version__}"


def test_help_lists_the_tool():
    out = subprocess.run([sys.executable, "-m", "fleet", "--help"], capture_output=True, text=True, check=True)
    assert "Automate fleets of Kubernetes clusters" in out.stdout


def test_public_all_is_sorted_and_complete():
    assert list(fleet.__all__) == sorted(fleet.__all__)
    for name in fleet.__all__:
        assert hasattr(fleet, name), name
