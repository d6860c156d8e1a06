import pytest

from fleet.sim.model import StatusError
from fleet.sim.resources import ResourceRegistry
from fleet.sim.store import Store

REG = ResourceRegistry()
DEPLOY = REG.by_kind("apps", "Deployment")
NS = REG.by_kind("", "Namespace")


def _deploy(name="web", image="nginx"):
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"template": {"spec": {"image": image}}}}


def test_create_sets_identity_and_versions():
    store = Store()
    obj = store.create(DEPLOY, _deploy())
    meta = obj["metadata"]
    assert meta["generation"] == 1
    assert meta["resourceVersion"] == "1"
    assert meta["uid"]
    assert obj["apiVersion"] == "apps/v1"
    assert obj["kind"] == "Deployment"
    with pytest.raises(StatusError) as e:
        store.create(DEPLOY, _deploy())
    assert (e.value.code, e.value.reason) == (409, "AlreadyExists")


def test_generation_moves_on_spec_changes_only_and_stale_versions_conflict():
    store = Store()
    first = store.create(DEPLOY, _deploy())
    with_label = _deploy()
    with_label["metadata"] |= {"labels": {"a": "b"}, "resourceVersion": first["metadata"]["resourceVersion"]}
    updated = store.update(DEPLOY, with_label)
    assert updated["metadata"]["generation"] == 1
    new_image = _deploy(image="nginx:2")
    new_image["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
    assert store.update(DEPLOY, new_image)["metadata"]["generation"] == 2
    stale = _deploy(image="nginx:3")
    stale["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    with pytest.raises(StatusError) as e:
        store.update(DEPLOY, stale)
    assert (e.value.code, e.value.reason) == (409, "Conflict")


def test_cluster_scoped_objects_have_no_namespace():
    store = Store()
    ns = store.create(NS, {"metadata": {"name": "team-a", "namespace": "ignored"}})
    assert "namespace" not in ns["metadata"]
    assert store.get(NS, "", "team-a") is ns


def test_feed_serves_events_since_a_version_and_expires_old_ones():
    store = Store(history=3)
    for i in range(5):
        store.create(DEPLOY, _deploy(f"d{i}"))
    assert [e.object["metadata"]["name"] for e in store.events_since(3)] == ["d3", "d4"]
    assert store.events_since(5) == []
    with pytest.raises(StatusError) as e:
        store.events_since(0)
    assert e.value.code == 410


def test_removing_the_last_finalizer_of_a_deleting_object_deletes_it():
    store = Store()
    obj = _deploy()
    obj["metadata"]["finalizers"] = ["example.com/keep"]
    store.create(DEPLOY, obj)
    deleting = store.mark_deleting(DEPLOY, "default", "web")
    assert deleting["metadata"]["deletionTimestamp"]
    released = {**deleting, "metadata": {**deleting["metadata"], "finalizers": []}}
    store.update(DEPLOY, released)
    assert store.get(DEPLOY, "default", "web") is None
    assert store.events_since(0)[-1].type == "DELETED"


async def test_wait_changed_wakes_on_the_next_write():
    import trio

    store = Store()
    async with trio.open_nursery() as nursery:
        woke = trio.Event()

        async def waiter():
            await store.wait_changed(0)
            woke.set()

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert not woke.is_set()
        store.create(DEPLOY, _deploy())
        with trio.fail_after(1):
            await woke.wait()
