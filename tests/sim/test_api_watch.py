"""Watches through ``kubernetes.watch.Watch``: from a resourceVersion, selectors, timeouts, bookmarks, 410 Gone."""

from __future__ import annotations

import kubernetes
import pytest
from kubernetes import watch
from kubernetes.client import ApiException

from fleet.sim import SimFleet
from fleet.sim.cluster import SimConfig


def _cm(name, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": name}}


def test_watch_from_a_resource_version_sees_every_change_in_order(core_v1, namespace):
    start = core_v1.list_namespaced_config_map(namespace).metadata.resource_version
    core_v1.create_namespaced_config_map(namespace, _cm("w1"))
    core_v1.patch_namespaced_config_map("w1", namespace, {"data": {"k": "changed"}})
    core_v1.delete_namespaced_config_map("w1", namespace)
    seen = []
    for event in watch.Watch().stream(
        core_v1.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED":
            break
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_without_a_version_starts_with_the_current_objects(core_v1, namespace):
    core_v1.create_namespaced_config_map(namespace, _cm("now1"))
    core_v1.create_namespaced_config_map(namespace, _cm("now2"))
    names = [
        e["object"].metadata.name
        for e in watch.Watch().stream(core_v1.list_namespaced_config_map, namespace, timeout_seconds=1)
    ]
    assert names == ["now1", "now2"]


def test_watch_filters_by_label_and_field_selector(core_v1, namespace):
    start = core_v1.list_namespaced_config_map(namespace).metadata.resource_version
    core_v1.create_namespaced_config_map(namespace, _cm("a", {"team": "x"}))
    core_v1.create_namespaced_config_map(namespace, _cm("b", {"team": "y"}))
    core_v1.create_namespaced_config_map(namespace, _cm("c", {"team": "x"}))
    by_label = [
        e["object"].metadata.name
        for e in watch.Watch().stream(
            core_v1.list_namespaced_config_map,
            namespace,
            label_selector="team=x",
            resource_version=start,
            timeout_seconds=1,
        )
    ]
    assert by_label == ["a", "c"]
    by_field = [
        e["object"].metadata.name
        for e in watch.Watch().stream(
            core_v1.list_namespaced_config_map,
            namespace,
            field_selector="metadata.name=b",
            resource_version=start,
            timeout_seconds=1,
        )
    ]
    assert by_field == ["b"]


def test_timeout_seconds_ends_the_stream(core_v1, namespace, cluster):
    events = list(watch.Watch().stream(core_v1.list_namespaced_config_map, namespace, timeout_seconds=1))
    assert events == []
    if cluster.sim is not None:
        record = [r for r in cluster.sim.requests() if "watch=true" in r.query][-1]
        assert record.status == 200
        assert 0.9 <= record.duration < 5


@pytest.mark.sim_only
def test_bookmarks_and_410_gone_for_a_version_older_than_the_history(tmp_path):
    config = SimConfig(history=5, bookmark_interval=0.2)
    with SimFleet(1, tls=False, out_dir=tmp_path, config=config, services=False) as sim:
        api_client = kubernetes.config.new_client_from_config(str(sim.clusters[0].kubeconfig_path))
        with api_client:
            core = kubernetes.client.CoreV1Api(api_client)
            start = core.list_namespaced_config_map("default").metadata.resource_version
            for i in range(10):
                core.create_namespaced_config_map("default", _cm(f"h{i}"))
            with pytest.raises(ApiException) as e:
                for _ in watch.Watch().stream(
                    core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=5
                ):
                    pass
            assert e.value.status == 410
            assert "Expired" in e.value.reason

            now = core.list_namespaced_config_map("default").metadata.resource_version
            kinds = [
                e["type"]
                for e in watch.Watch().stream(
                    core.list_namespaced_config_map,
                    "default",
                    resource_version=now,
                    allow_watch_bookmarks=True,
                    timeout_seconds=1,
                )
            ]
            assert kinds
            assert set(kinds) == {"BOOKMARK"}
