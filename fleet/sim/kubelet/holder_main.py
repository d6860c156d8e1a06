"""The holder of one container's mount namespace, run as a script: ``python -S -I holder_main.py SPEC``.

It unshares a mount namespace (private propagation), mounts an overlay of the host root, ``/proc``,
``/sys``, a private ``/dev`` and every bind mount of SPEC (a JSON object), creates the working
directory, chroots, prints ``ready`` and becomes ``sleep infinity``. One process doing the syscalls
itself is several times faster than a shell running ``mount`` for each step. It imports nothing but
the standard library (it runs isolated, outside the package). A failing step prints what failed and
why to stderr and exits 1.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}

_libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> OSError:
    errno = ctypes.get_errno()
    return OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encoded = [s.encode() if s is not None else None for s in (source, target, fstype, data)]
    if _libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3]) != 0:
        raise _fail(f"mount {source or fstype or ''} on {target}")


def _make_target(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target):
        with open(target, "w"):
            pass


def set_up(spec: dict[str, object]) -> None:
    root = str(spec["root"])
    if _libc.unshare(CLONE_NEWNS) != 0:
        raise _fail("unshare the mount namespace")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("overlay", root, "overlay", 0, f"lowerdir=/,upperdir={spec['upper']},workdir={spec['work']}")
    mount("/proc", f"{root}/proc", None, MS_BIND | MS_REC)
    mount("/sys", f"{root}/sys", None, MS_BIND | MS_REC)
    # A private /dev: the device nodes containers need, the host's devpts (so ttyname() resolves for
    # exec with a terminal), its own shm, and room for the termination-message file.
    mount("devices", f"{root}/dev", "tmpfs", 0, "mode=755,size=65536k")
    for device in DEVICES:
        _make_target(f"/dev/{device}", f"{root}/dev/{device}")
        mount(f"/dev/{device}", f"{root}/dev/{device}", None, MS_BIND)
    for name, link in LINKS.items():
        os.symlink(link, f"{root}/dev/{name}")
    os.mkdir(f"{root}/dev/pts")
    mount("/dev/pts", f"{root}/dev/pts", None, MS_BIND)
    os.symlink("pts/ptmx", f"{root}/dev/ptmx")
    os.mkdir(f"{root}/dev/shm")
    mount("shm", f"{root}/dev/shm", "tmpfs", 0, "size=67108864")
    mounts = spec.get("mounts")
    assert isinstance(mounts, list)
    for source, target, read_only in mounts:
        where = f"{root}{target}"
        _make_target(source, where)
        mount(source, where, None, MS_BIND)
        if read_only:
            mount(None, where, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    working_dir = str(spec["working_dir"])
    os.makedirs(f"{root}{working_dir}", exist_ok=True)
    if spec.get("read_only_root"):
        mount(None, root, None, MS_REMOUNT | MS_RDONLY)
    os.chroot(root)
    os.chdir(working_dir)


def main() -> None:
    try:
        set_up(json.loads(sys.argv[1]))
    except OSError as e:
        print(e.strerror or str(e), file=sys.stderr)
        sys.exit(1)
    print("ready", flush=True)
    for sleep in ("/bin/sleep", "/usr/bin/sleep"):
        if os.path.exists(sleep):
            os.execv(sleep, ["sleep", "infinity"])
    print("no sleep program in the container's root (/bin/sleep or /usr/bin/sleep)", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
