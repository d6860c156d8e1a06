"""A wait that runs out of time says how long it waited as Go prints durations (``1m30s``), not as
Python prints a ``timedelta`` (``0:01:30``)."""

from datetime import timedelta

import pytest

from fleet.errors import StepFailed
from fleet.kube.apply import apply
from fleet.kube.wait import jsonpath_check, wait
from tests.kube.manifests import configmap


@pytest.mark.parametrize(("timeout", "shown"), [(timedelta(milliseconds=1500), "1.5s"), (0.5, "500ms")])
async def test_a_timed_out_wait_prints_its_timeout_as_a_go_duration(kube, namespace, timeout, shown):
    await apply(kube, configmap(a="1"), namespace=namespace)
    info = await kube.discovery.resolve("v1", "ConfigMap")
    with pytest.raises(StepFailed) as failed:
        await wait(kube, info, namespace, "settings", jsonpath_check(".data.a", "2"), timeout=timeout, what="a == 2")
    assert f"a == 2 did not hold within {shown}: " in failed.value.message
    assert "0:00:" not in failed.value.message
