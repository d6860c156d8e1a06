"""``deploy/Dockerfile`` checked as hadolint would, without a container engine: parsed with
dockerfile-parse, every rule on the stage it applies to, and every file it copies present in the repository
(and let through by ``.dockerignore``)."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def _instructions() -> list[dict[str, str]]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    return list(parser.structure)


def _stages() -> list[list[dict[str, str]]]:
    stages: list[list[dict[str, str]]] = []
    for ins in _instructions():
        if ins["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def _words(value: str) -> list[str]:
    value = value.strip()
    return json.loads(value) if value.startswith("[") else value.split()


def test_it_is_multi_stage_with_pinned_slim_python_bases():
    froms = [s[0]["value"] for s in _stages()]
    assert len(froms) >= 2
    for value in froms:
        image = value.split()[0]
        assert ":" in image, f"unpinned base image: {image}"
        assert not image.endswith(":latest"), image
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), image
    assert froms[-1].split()[-1] == "runtime"


def test_the_final_stage_installs_the_wheel_as_a_non_root_user_before_the_entry_point():
    final = _stages()[-1]
    kinds = [i["instruction"] for i in final]
    user = next(i["value"] for i in final if i["instruction"] == "USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), f"USER {user}: a fixed numeric UID"
    assert int(uid) >= 10000, f"USER {user}: a non-root UID outside the system range"
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")
    assert _words(next(i["value"] for i in final if i["instruction"] == "ENTRYPOINT")) == ["fleet"]
    runs = " ".join(i["value"] for i in final if i["instruction"] == "RUN")
    assert ".whl" in runs
    assert not re.search(r"\b(apt-get|apk|gcc|make|build)\b", runs), "no build tools in the runtime stage"
    copies = [i["value"] for i in final if i["instruction"] == "COPY"]
    assert copies
    assert all(c.startswith("--from=build ") for c in copies), "the runtime copies the wheel only"


def test_pip_never_keeps_its_cache():
    for ins in _instructions():
        if ins["instruction"] == "RUN" and re.search(r"\bpip install\b", ins["value"]):
            assert "--no-cache-dir" in ins["value"], ins["value"]


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``relative`` out of the context (last matching pattern wins)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if glob == "**" or any(fnmatch.fnmatch(p, glob) or fnmatch.fnmatch(p, glob + "/**") for p in prefixes):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    path = ROOT / ".dockerignore"
    assert path.is_file(), "a .dockerignore keeps .git, venvs and caches out of the build context"
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _context_copies() -> list[str]:
    sources = []
    for ins in _instructions():
        if ins["instruction"] in ("COPY", "ADD"):
            words = [w for w in _words(ins["value"]) if not w.startswith("--")]
            if not any(w.startswith("--from=") for w in _words(ins["value"])):
                sources.extend(words[:-1])
    return sources


@pytest.mark.parametrize("source", _context_copies())
def test_every_copied_file_is_in_the_repository_and_in_the_build_context(source):
    path = ROOT / source
    assert path.exists(), f"COPY {source}: no such file in the repository"
    assert not _ignored(source, _dockerignore()), f"COPY {source}: .dockerignore leaves it out of the context"


def test_symbolic_links_in_what_is_copied_point_inside_what_is_copied():
    copied = [ROOT / s for s in _context_copies()]
    for top in copied:
        for link in [p for p in ([top, *top.rglob("*")] if top.is_dir() else [top]) if p.is_symlink()]:
            target = link.resolve()
            assert any(target == c or c in target.parents for c in copied), f"{link} -> {target}: not copied"


def test_the_context_leaves_out_git_venvs_and_caches():
    patterns = _dockerignore()
    for path in (".git/config", ".venv/bin/python", "fleet/__pycache__/app.cpython-311.pyc", "tests/conftest.py"):
        assert _ignored(path, patterns), path
