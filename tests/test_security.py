"""Security checks: templates cannot reach Python internals, the environment or files outside the
playbook's folder; tar streams from pods cannot write outside their target nor exceed the size cap;
TLS is verified unless a cluster explicitly says otherwise (with a warning)."""

from __future__ import annotations

import io
import logging
import os
import tarfile
from pathlib import Path

import pytest
import trio

from fleet import templating
from fleet.errors import InputError, Location, StepFailed
from fleet.inventory import connection as connection_module
from fleet.inventory.loader import load_inventory
from fleet.playbook.variables import reader
from fleet.pods.transfer import extract_safely
from fleet.secrets import SecretResolver

WHERE = Location("p.yaml", 5, "steps[0].message")

# -- templates ------------------------------------------------------------------------------------------


@pytest.fixture
def playbook_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "playbook"
    folder.mkdir()
    (folder / "ok.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("outside")
    (folder / "escape").symlink_to(tmp_path / "secret.txt")
    (folder / "escape-dir").symlink_to(tmp_path)
    return folder


def _render(text: str, folder: Path) -> str:
    return templating.render(text, {"read": reader(folder), "cluster": {"name": "c1"}}, location=WHERE)


@pytest.mark.parametrize(
    ("template", "refusal"),
    [
        ("{{ ''.__class__.__mro__ }}", "'__class__' of 'str' object is unsafe"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "'__init__' of 'type' object is unsafe"),
        ("{{ lipsum.__globals__.os.environ }}", "'__globals__' of 'function' object is unsafe"),
        ("{{ self.__init__.__globals__ }}", "unsafe"),
        ("{{ '{0.__class__}'.format(1) }}", "unsafe"),
        ("{{ cluster.name.__class__ }}", "unsafe"),
        ("{{ environ.HOME }}", "'environ' is undefined"),
        ("{{ os.environ }}", "'os' is undefined"),
        ("{{ range.__self__ }}", "no attribute '__self__'"),
        ("{{ read('../secret.txt') }}", "only files below the playbook's folder"),
        ("{{ read('../../etc/passwd') }}", "only files below the playbook's folder"),
        ("{{ read('/etc/passwd') }}", "only files below the playbook's folder"),
        ("{{ read('escape') }}", "only files below the playbook's folder"),
        ("{{ read('escape-dir/secret.txt') }}", "only files below the playbook's folder"),
    ],
)
def test_template_escape_is_refused(template: str, refusal: str, playbook_dir: Path) -> None:
    with pytest.raises(InputError) as raised:
        _render(template, playbook_dir)
    assert refusal in str(raised.value)
    assert str(raised.value).startswith("p.yaml:5: steps[0].message: ")
    assert "outside" not in str(raised.value)
    assert os.environ.get("HOME", "\0") not in str(raised.value)


def test_read_inside_the_folder_works(playbook_dir: Path) -> None:
    assert _render("{{ read('ok.txt') }}", playbook_dir) == "inside"


# -- tar streams from pods --------------------------------------------------------------------------


def _tar(tmp_path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    archive = tmp_path / "in.tar"
    archive.write_bytes(buffer.getvalue())
    return archive


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_member("/etc/evil"), "is absolute"),
        (_member("../evil"), ".."),
        (_member("out/../../evil"), ".."),
        (_member("out/link", tarfile.SYMTYPE, "/etc/passwd"), "link or a special file"),
        (_member("out/rel-link", tarfile.SYMTYPE, "../../evil"), "link or a special file"),
        (_member("out/hard", tarfile.LNKTYPE, "/etc/passwd"), "link or a special file"),
        (_member("out/dev", tarfile.CHRTYPE), "link or a special file"),
        (_member("out/blk", tarfile.BLKTYPE), "link or a special file"),
        (_member("out/fifo", tarfile.FIFOTYPE), "link or a special file"),
    ],
)
def test_unsafe_tar_member_is_refused(member: tarfile.TarInfo, reason: str, tmp_path: Path) -> None:
    archive = _tar(tmp_path, (member, b"payload"), (_member("out/ok.txt"), b"fine"))
    target = tmp_path / "target"
    extracted, refused = extract_safely(archive, target, lambda name: name)
    assert reason in refused[member.name]
    assert list(extracted) == ["out/ok.txt"]
    assert extracted["out/ok.txt"].read_bytes() == b"fine"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != tmp_path]
    assert written == [extracted["out/ok.txt"]]  # nothing but the one safe file, and it is below target
    assert extracted["out/ok.txt"].resolve().is_relative_to(target.resolve())


def test_a_link_then_a_file_through_it_stays_inside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = _tar(
        tmp_path,
        (_member("out/dir", tarfile.SYMTYPE, str(outside)), b""),
        (_member("out/dir/evil"), b"payload"),
    )
    extracted, _refused = extract_safely(archive, tmp_path / "target", lambda name: name)
    assert not any(outside.iterdir())
    assert all(p.resolve().is_relative_to((tmp_path / "target").resolve()) for p in extracted.values())


def test_output_size_cap(tmp_path: Path) -> None:
    archive = _tar(tmp_path, (_member("out/a"), b"x" * 600), (_member("out/b"), b"y" * 600))
    extract_safely(archive, tmp_path / "roomy", lambda name: name, 1200)
    with pytest.raises(StepFailed, match="exceed 1,000 bytes"):
        extract_safely(archive, tmp_path / "tight", lambda name: name, 1000)


def test_output_size_cap_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from fleet.settings import FleetSettings

    assert FleetSettings().pod_output_max_bytes == 1024**3
    monkeypatch.setenv("FLEET_POD_OUTPUT_MAX_BYTES", "2048")
    assert FleetSettings().pod_output_max_bytes == 2048


# -- TLS ------------------------------------------------------------------------------------------------


def _inventory(tmp_path: Path, extra: str, kubeconfig_extra: str = "") -> Path:
    (tmp_path / "kc.yaml").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c1\n"
        f"clusters: [{{name: c1, cluster: {{server: 'https://127.0.0.1:6443'{kubeconfig_extra}}}}}]\n"
        "users: [{name: u, user: {token: abc}}]\n"
        "contexts: [{name: c1, context: {cluster: c1, user: u}}]\n"
    )
    path = tmp_path / "inv.yaml"
    path.write_text(f"clusters:\n  - name: c1\n    connection: {{kubeconfig: file:kc.yaml{extra}}}\n")
    return path


def _connect(path: Path) -> connection_module.Connection:
    inventory = load_inventory([path])

    async def main() -> connection_module.Connection:
        return await connection_module.resolve_connection(inventory.clusters[0], SecretResolver(inventory.secrets))

    return trio.run(main)


def test_tls_is_verified_by_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        conn = _connect(_inventory(tmp_path, ""))
    assert conn.insecure is False
    assert not conn.kubeconfig["clusters"][0]["cluster"].get("insecure-skip-tls-verify")
    assert "TLS verification is OFF" not in caplog.text


@pytest.mark.parametrize(
    ("extra", "kubeconfig_extra"), [(", insecureSkipVerify: true", ""), ("", ", insecure-skip-tls-verify: true")]
)
def test_insecure_needs_a_flag_per_cluster_and_warns(
    extra: str, kubeconfig_extra: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        conn = _connect(_inventory(tmp_path, extra, kubeconfig_extra))
    assert conn.insecure is True
    assert conn.kubeconfig["clusters"][0]["cluster"]["insecure-skip-tls-verify"] is True
    assert "cluster c1: TLS verification is OFF" in caplog.text
