"""The tar streams of file transfer, without a pod: what fleet sends, and what it accepts back."""

from __future__ import annotations

import io
import tarfile

import pytest
import trio

from fleet.pods.models import PodTask
from fleet.pods.transfer import TarSource, extract_safely, glob_regex, output_selector, tar_stream


def source(name, data):
    async def chunks():
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    return TarSource(name=name, size=len(data), chunks=chunks)


async def test_tar_stream_round_trips_names_and_bytes(tmp_path):
    files = {
        "plain.txt": b"hello\n",
        "with space/é ü 名前.bin": bytes(range(256)) * 40,
        "empty": b"",
        "deep/" * 30 + "long.txt": b"x" * 513,
    }
    archive = tmp_path / "in.tar"
    with archive.open("wb") as sink:
        async for chunk in tar_stream([source(n, d) for n, d in files.items()]):
            sink.write(chunk)
    extracted, refused = await trio.to_thread.run_sync(extract_safely, archive, tmp_path / "out", lambda p: p)
    assert refused == {}
    assert {n: p.read_bytes() for n, p in extracted.items()} == files


async def test_tar_stream_refuses_a_source_of_the_wrong_size(tmp_path):
    wrong = TarSource(name="a", size=10, chunks=source("a", b"12345").chunks)
    with pytest.raises(Exception, match="5 bytes read, 10 expected"):
        async for _ in tar_stream([wrong]):
            pass


def make_tar(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = data
                tar.addfile(info)
            else:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)


def test_extract_refuses_members_that_escape(tmp_path):
    archive = tmp_path / "evil.tar"
    make_tar(
        archive,
        [
            ("./", "dir", None),
            ("./ok.txt", "file", b"fine"),
            ("/etc/owned", "file", b"x"),
            ("../outside", "file", b"x"),
            ("a/../../outside2", "file", b"x"),
            ("link", "symlink", "/etc/passwd"),
            ("hard", "hardlink", "ok.txt"),
        ],
    )
    target = tmp_path / "out"
    extracted, refused = extract_safely(archive, target, lambda p: p)
    assert list(extracted) == ["ok.txt"]
    assert extracted["ok.txt"].read_bytes() == b"fine"
    assert refused == {
        "/etc/owned": "is absolute",
        "../outside": "contains '..'",
        "a/../../outside2": "contains '..'",
        "link": "is a link or a special file, not a regular file",
        "hard": "is a link or a special file, not a regular file",
    }
    assert not (tmp_path / "outside").exists()
    assert sorted(p.name for p in target.iterdir()) == ["0"]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.txt", "out.txt", True),
        ("*.txt", "dir/out.txt", False),
        ("**/*.txt", "dir/sub/out.txt", True),
        ("**/*.txt", "out.txt", True),
        ("my-dir/**", "my-dir/a/b", True),
        ("my-dir/*/**", "my-dir/a", False),
        ("out?.json", "out1.json", True),
        ("[ab].txt", "b.txt", True),
        ("name with space.txt", "name with space.txt", True),
    ],
)
def test_glob(pattern, path, matches):
    assert bool(glob_regex(pattern).match(path)) is matches


def test_output_selector_names():
    task = PodTask.model_validate({"image": "a", "commands": ["x"], "outputFiles": ["*.json"], "outputDirectory": True})
    select = output_selector(task)
    assert select("env.json") == "env.json"
    assert select("data.txt") is None
    assert select("output/report/a.csv") == "report/a.csv"
    sync = output_selector(PodTask.model_validate({"image": "a", "commands": ["x"], "syncWorkingDirectory": True}))
    assert sync("data.txt") == "data.txt"
