"""Run a command and write its own peak RSS (KiB, ``ru_maxrss`` from ``wait4``) to a file; exit as it did.

Usage: python peak_rss.py RESULT_FILE COMMAND...

Why a process between: on Linux a child's ``ru_maxrss`` counts the RSS of the process it was forked from
(exec folds the forked copy's high-water mark in), so a child of a test process that has grown to 444 MB
reports at least 444 MB however little it used. Forked from this small process, the command's figure is
its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main(result: str, *command: str) -> int:
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait for it again
    Path(result).write_text(str(usage.ru_maxrss))
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
