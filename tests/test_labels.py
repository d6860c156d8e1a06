import pytest

from fleet.labels import SelectorError, parse_selector, selector_from_label_selector

LABELS = {"env": "prod", "region": "eu-west-1", "tier": "gold", "replicas": "3"}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("env=prod", True),
        ("env==prod", True),
        ("env=dev", False),
        ("env!=dev", True),
        ("missing!=x", True),
        ("env", True),
        ("!deprecated", True),
        ("!env", False),
        ("region in (eu-west-1,eu-central-1)", True),
        ("region in (us-east-1)", False),
        ("region notin (us-east-1, us-west-2)", True),
        ("env=prod,region in (eu-west-1,eu-central-1),!deprecated", True),
        ("env=prod,tier=silver", False),
        ("replicas>2", True),
        ("replicas<2", False),
        ("app.kubernetes.io/name", False),
        ("  env = prod ,  tier  ", True),
    ],
)
def test_selector_matching(text, matches):
    assert parse_selector(text).matches(LABELS) is matches


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("env=prod,", 9, "expected a requirement, found the end"),
        ("env in prod", 7, "expected '(' after 'in'"),
        ("env in (a,b", 11, "expected ',' or ')'"),
        ("env prod", 4, "expected one of"),
        ("-bad=1", 0, "is not a valid label key"),
        ("env=-x-", 4, "is not a valid label value"),
        ("n>x", 2, "expected an integer"),
        ("a=b c=d", 4, "expected ',' between requirements"),
        ("env in ()", 8, "expected at least one value in the 'in' set"),
        ("env notin ( )", 12, "expected at least one value in the 'notin' set"),
    ],
)
def test_selector_errors_say_where_and_what(text, position, expected):
    with pytest.raises(SelectorError) as e:
        parse_selector(text)
    assert e.value.position == position
    assert expected in str(e.value)


def test_round_trip_and_label_selector_objects():
    sel = parse_selector("env=prod,region in (a,b),!x")
    assert str(sel) == "env=prod,region in (a,b),!x"
    spec = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}
    assert selector_from_label_selector(spec).matches({"app": "web", "tier": "a"})
    assert not selector_from_label_selector(spec).matches({"app": "web"})
    assert selector_from_label_selector(None).matches({})
