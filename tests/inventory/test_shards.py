"""``--shard I/N``: every cluster in exactly one shard, balanced, and stable when the fleet changes."""

from __future__ import annotations

from collections import Counter

import pytest

from fleet.errors import InputError
from fleet.inventory.shards import Shard, owner

NAMES = [f"tenant-{i:04d}-eu" for i in range(3000)]


def test_three_shards_cover_every_cluster_exactly_once_and_are_balanced():
    shards = [Shard(i, 3) for i in range(3)]
    owned = [shard.select(NAMES, str) for shard in shards]
    assert sorted(n for part in owned for n in part) == sorted(NAMES)
    assert all(abs(len(part) - 1000) < 100 for part in owned), [len(p) for p in owned]


def test_adding_a_cluster_moves_no_other_and_a_fourth_shard_moves_about_a_quarter():
    before = {n: owner(n, 3) for n in NAMES}
    after = {n: owner(n, 3) for n in [*NAMES, "tenant-new"]}
    assert all(after[n] == before[n] for n in NAMES)
    moved = sum(1 for n in NAMES if owner(n, 4) != before[n])
    assert 0.2 < moved / len(NAMES) < 0.3
    # the ones that moved went to the new shard only
    assert Counter(owner(n, 4) for n in NAMES if owner(n, 4) != before[n]) == Counter({3: moved})


def test_the_shard_of_a_cluster_is_the_same_in_every_process():
    assert [owner(n, 5) for n in NAMES[:8]] == [owner(n, 5) for n in NAMES[:8]]
    assert Shard(0, 1).select(NAMES, str) == NAMES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", "expected I/N"),
        ("a/3", "expected I/N"),
        ("-1/3", "expected I/N"),
        ("3/3", "I must be at least 0 and below N"),
        ("0/0", "I must be at least 0 and below N"),
    ],
)
def test_a_bad_shard_names_the_flag_and_the_form(text, expected):
    with pytest.raises(InputError, match=expected) as e:
        Shard.parse(text)
    assert "--shard" in str(e.value)
    assert str(Shard.parse(" 1 / 3 ")) == "1/3"
