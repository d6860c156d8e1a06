"""A template that fails while it renders is an input error naming where it is, whatever Python raised."""

from __future__ import annotations

import pytest

from fleet.errors import InputError, Location
from fleet.templating import render


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ missing }}", "template error: 'missing' is undefined"),
        ("{{ [1, 'a'] | max }}", "template error: '>' not supported between instances of 'str' and 'int'"),
        ("{{ 1 / 0 }}", "template error: division by zero"),
    ],
)
def test_a_failing_template_is_an_input_error_at_its_location(text, expected):
    where = Location(file="play.yaml", line=3, field="steps[0].patch")
    with pytest.raises(InputError) as caught:
        render(text, {}, location=where)
    assert caught.value.message == expected
    assert caught.value.location == where
