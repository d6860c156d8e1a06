import pytest

from fleet.sim.controllers.deployment import comparable
from fleet.sim.controllers.naming import template_hash
from fleet.sim.controllers.rollout import Sizes, new_rs_replicas, old_rs_replicas, resolve_fenceposts


@pytest.mark.parametrize(
    ("surge", "unavailable", "replicas", "expected"),
    [
        (None, None, 4, (1, 1)),  # 25% of 4
        (None, None, 3, (1, 0)),  # surge rounds up, unavailable down
        (None, None, 10, (3, 2)),
        ("0%", "0%", 3, (0, 1)),  # both zero would stall
        (0, 0, 5, (0, 1)),
        (2, "50%", 5, (2, 2)),
        ("100%", 0, 2, (2, 0)),
        ("3", "1", 4, (3, 1)),
        (None, None, 0, (0, 1)),
    ],
)
def test_fenceposts_round_like_kubernetes(surge, unavailable, replicas, expected):
    assert resolve_fenceposts(surge, unavailable, replicas) == expected


@pytest.mark.parametrize(
    ("replicas", "surge", "new_spec", "all_spec", "expected"),
    [
        (4, 1, 0, 4, 1),  # room for one surge pod
        (4, 1, 1, 5, 1),  # at the ceiling: wait
        (4, 1, 1, 4, 2),  # an old pod went: grow again
        (4, 0, 0, 4, 0),
        (3, 1, 0, 0, 3),  # a brand-new deployment starts at full size
        (3, 1, 5, 5, 3),  # larger than wanted: scale down
    ],
)
def test_the_new_replicaset_grows_within_max_surge(replicas, surge, new_spec, all_spec, expected):
    assert new_rs_replicas(replicas, surge, new_spec, all_spec) == expected


@pytest.mark.parametrize(
    ("old", "new", "replicas", "max_unavailable", "expected"),
    [
        ([Sizes(4, 4)], Sizes(1, 0), 4, 0, [4]),  # the surge pod is not available yet
        ([Sizes(4, 4)], Sizes(1, 1), 4, 0, [3]),  # it is: one old pod may go
        ([Sizes(4, 4)], Sizes(0, 0), 4, 1, [3]),  # maxUnavailable lets one go at once
        ([Sizes(3, 1)], Sizes(1, 0), 3, 0, [3]),  # no budget while the new pod is unavailable
        ([Sizes(3, 1)], Sizes(1, 1), 3, 0, [2]),  # unhealthy old pods go first, within the budget
        ([Sizes(2, 0), Sizes(2, 2)], Sizes(2, 2), 4, 1, [0, 1]),
        ([Sizes(0, 0)], Sizes(3, 3), 3, 1, [0]),
    ],
)
def test_old_replicasets_shrink_without_breaking_min_available(old, new, replicas, max_unavailable, expected):
    assert old_rs_replicas(old, new, replicas, max_unavailable) == expected


def test_template_hashes_are_stable_short_and_change_with_the_template():
    a = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    b = {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert template_hash(a) == template_hash({"spec": {"containers": [{"image": "nginx", "name": "c"}]}})
    assert template_hash(a) != template_hash(b)
    assert template_hash(a) != template_hash(a, collision_count=1)
    assert set(template_hash(a)) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert 8 <= len(template_hash(a)) <= 10


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        # what a Go-typed client sends for an unchanged template, and what a JSON client stored
        (
            {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {}}]},
            },
            {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        ),
        (
            {"spec": {"volumes": [], "containers": [{"name": "c", "env": []}]}},
            {"spec": {"containers": [{"name": "c"}]}},
        ),
        ({"metadata": {"annotations": {}}}, {}),
    ],
)
def test_templates_compare_as_go_types_do(sent, stored):
    assert comparable(sent) == comparable(stored)
    assert template_hash(comparable(sent)) == template_hash(comparable(stored))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (
            {"spec": {"containers": [{"name": "c", "image": "a"}]}},
            {"spec": {"containers": [{"name": "c", "image": "b"}]}},
        ),
        ({"spec": {"replicas": 0}}, {"spec": {}}),  # zero is a value, not an absence
        ({"metadata": {"labels": {"a": ""}}}, {"metadata": {"labels": {}}}),
    ],
)
def test_real_differences_still_differ(left, right):
    assert comparable(left) != comparable(right)
