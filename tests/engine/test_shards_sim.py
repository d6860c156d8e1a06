"""``fleet run --shard I/N`` over 3 shards covers every cluster exactly once; ``fleet report merge`` makes
one report and one JUnit file of the shards' reports."""

from __future__ import annotations

import json
from collections import Counter
from xml.etree import ElementTree

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import inventory

pytestmark = pytest.mark.sim_only

PLAYBOOK = """
id: sharded
strategy: {maxFailures: 1}
steps:
  - id: config
    type: apply
    namespace: default
    manifest: {apiVersion: v1, kind: ConfigMap, metadata: {name: sharded}, data: {shard: "yes"}}
"""


def _applies(sim: SimFleet, name: str) -> int:
    return sum(
        1
        for r in sim[name].requests()
        if r.method == "PATCH" and r.path == "/api/v1/namespaces/default/configmaps/sharded"
    )


def test_three_shards_cover_every_cluster_once_and_their_reports_merge(fleet, tmp_path):
    with SimFleet(clusters=9, tls=True, out_dir=tmp_path / "sim") as sim:
        names = [c.name for c in sim.clusters]
        inv = str(inventory(sim, tmp_path / "inv.yaml"))
        playbook = tmp_path / "sharded.yaml"
        playbook.write_text(PLAYBOOK)
        reports = []
        for index in range(3):
            result = fleet("run", str(playbook), "-i", inv, "--shard", f"{index}/3", "-o", "json")
            assert result.returncode == 0, result.stderr
            path = tmp_path / f"shard-{index}.json"
            path.write_text(result.stdout)
            reports.append(path)
        covered = Counter(c["cluster"] for p in reports for c in json.loads(p.read_text())["clusters"])
        assert covered == Counter({name: 1 for name in names})
        assert all(_applies(sim, name) == 1 for name in names)

    junit = tmp_path / "junit.xml"
    merged = fleet("report", "merge", *map(str, reports), "-o", "json", "--junit", str(junit))
    assert merged.returncode == 0, merged.stderr
    doc = json.loads(merged.stdout)
    assert sorted(c["cluster"] for c in doc["clusters"]) == sorted(names)
    assert doc["status"] == "succeeded"
    assert doc["counts"]["succeeded"] == 9
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == "9"
    assert suite.get("failures") == "0"

    table = fleet("report", "merge", *map(str, reports))
    assert "9 clusters: 9 succeeded" in table.stdout


def test_a_failed_shard_fails_the_merge_and_bad_reports_are_named(fleet, tmp_path):
    good = {
        "runId": "r1",
        "playbook": "p",
        "status": "succeeded",
        "message": None,
        "clusters": [{"cluster": "a", "wave": 1, "outcome": "succeeded", "steps": {}, "outputs": {}}],
    }
    bad = {**good, "runId": "r2", "status": "failed"}
    bad["clusters"] = [{"cluster": "b", "wave": 1, "outcome": "failed", "error": "boom", "steps": {}}]
    paths = []
    for doc in (good, bad):
        path = tmp_path / f"{doc['runId']}.json"
        path.write_text(json.dumps(doc))
        paths.append(str(path))
    failed = fleet("report", "merge", *paths)
    assert failed.returncode == 1
    assert "1 failed (b)" in failed.stdout

    overlap = fleet("report", "merge", paths[0], paths[0])
    assert overlap.returncode == 2
    assert "cluster a is also in" in overlap.stderr
    assert "Traceback" not in overlap.stderr

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**good, "clusters": [{"cluster": "a", "wave": "one", "outcome": "succeeded"}]}))
    named = fleet("report", "merge", str(broken))
    assert named.returncode == 2
    assert f"{broken}" in named.stderr
    assert "clusters[0].wave: expected a number" in named.stderr

    shard = fleet("run", str(broken), "--shard", "3/3", "-i", str(broken))
    assert shard.returncode == 2
    assert "--shard '3/3'" in shard.stderr
