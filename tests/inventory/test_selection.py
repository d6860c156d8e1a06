"""Cluster selection: label selectors, tenants and --limit name globs, table-driven."""

import pytest

from fleet.errors import InputError
from fleet.inventory import Cluster, ConnectionSpec, select_clusters

IN_CLUSTER = ConnectionSpec(in_cluster=True)
CLUSTERS = [
    Cluster(name="eu-1", tenant="acme", labels={"env": "prod", "region": "eu-west-1"}, connection=IN_CLUSTER,
            origin="t:1"),
    Cluster(name="eu-2", tenant="acme", labels={"env": "prod", "region": "eu-central-1", "deprecated": "yes"},
            connection=IN_CLUSTER, origin="t:2"),
    Cluster(name="eu-3", tenant="globex", labels={"env": "staging", "region": "eu-west-1"}, connection=IN_CLUSTER,
            origin="t:3"),
    Cluster(name="us-1", tenant="globex", labels={"env": "prod", "region": "us-east-1", "shard": "7"},
            connection=IN_CLUSTER, origin="t:4"),
]


@pytest.mark.parametrize(
    ("select", "tenants", "limit", "expected"),
    [
        (None, (), None, ["eu-1", "eu-2", "eu-3", "us-1"]),
        ("", (), "", ["eu-1", "eu-2", "eu-3", "us-1"]),
        ("env=prod", (), None, ["eu-1", "eu-2", "us-1"]),
        ("env==prod", (), None, ["eu-1", "eu-2", "us-1"]),
        ("env!=prod", (), None, ["eu-3"]),
        ("env=prod,region in (eu-west-1,eu-central-1),!deprecated", (), None, ["eu-1"]),
        ("region notin (eu-west-1)", (), None, ["eu-2", "us-1"]),
        ("deprecated", (), None, ["eu-2"]),
        ("shard>5", (), None, ["us-1"]),
        ("shard<5", (), None, []),
        (" env = prod , !deprecated ", (), None, ["eu-1", "us-1"]),
        (None, ("acme",), None, ["eu-1", "eu-2"]),
        (None, ("acme", "globex"), None, ["eu-1", "eu-2", "eu-3", "us-1"]),
        ("env=prod", ("globex",), None, ["us-1"]),
        (None, (), "eu-*", ["eu-1", "eu-2", "eu-3"]),
        (None, (), "eu-*,!eu-2", ["eu-1", "eu-3"]),
        (None, (), "!eu-2", ["eu-1", "eu-3", "us-1"]),
        (None, (), ["us-1", "eu-1"], ["eu-1", "us-1"]),
        (None, (), "eu-[12]", ["eu-1", "eu-2"]),
        ("env=prod", ("acme",), "*-1", ["eu-1"]),
        (None, (), "nothing-*", []),
    ],
)
def test_selection(select, tenants, limit, expected):
    assert [c.name for c in select_clusters(CLUSTERS, select, tenants=tenants, limit=limit)] == expected


@pytest.mark.parametrize(
    ("select", "position", "expected"),
    [
        ("env=prod,", 9, "expected a requirement, found the end"),
        ("env in prod", 7, "expected '(' after 'in'"),
        ("env in (a,b", 11, "expected ',' or ')'"),
        ("env=pr od", 7, "expected ',' between requirements"),
        ("-env=prod", 0, "is not a valid label key"),
        ("env=-prod", 4, "is not a valid label value"),
        ("shard>x", 6, "expected an integer"),
        ("env ~ prod", 4, "expected one of"),
        ("!", 1, "expected a label key, found the end"),
        ("env notin", 9, "expected '(', found the end"),
        ("env=prod,,x", 9, "',' is not a valid label key"),
        ("!env=prod", 4, "expected ',' between requirements, found '='"),
        ("a/b/c=x", 0, "'a/b/c' is not a valid label key"),
        ("env=" + "v" * 64, 4, "is not a valid label value (up to 63 characters"),
        ("env in (a b)", 10, "expected ',' or ')' in the value list, found 'b'"),
    ],
)
def test_bad_selectors_point_at_the_problem(select, position, expected):
    with pytest.raises(InputError) as caught:
        select_clusters(CLUSTERS, select)
    error = caught.value
    assert error.location.field == "--select"
    assert expected in error.message
    assert error.message.endswith(f"  {select}\n  {' ' * position}^")


def test_bad_limit():
    with pytest.raises(InputError, match="`!` must be followed by a name or glob"):
        select_clusters(CLUSTERS, limit="eu-1,!")
