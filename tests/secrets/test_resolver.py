"""The run's resolver: references are fetched lazily (loading an inventory fetches nothing) and at most
``secrets.concurrency`` at once, the others waiting their turn."""

import os

import trio
import trio.testing

from fleet.inventory import load_clusters
from fleet.secrets import SecretResolver, SecretsConfig

FETCHES = 5
LIMIT = 2


async def test_fetches_run_concurrently_up_to_the_limit(tmp_path):
    # Reading a FIFO blocks until someone writes it: each fetch stays at its store until released.
    for i in range(FETCHES):
        os.mkfifo(tmp_path / f"secret-{i}")
    resolver = SecretResolver(SecretsConfig(concurrency=LIMIT), base_dir=tmp_path)
    values: dict[int, str] = {}

    async def resolve(i):
        values[i] = await resolver.resolve(f"file:secret-{i}")

    def release(i):
        with open(tmp_path / f"secret-{i}", "w") as fifo:  # blocks until the fetch opens it
            fifo.write(f"value-{i}")

    writers = trio.CapacityLimiter(FETCHES)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for i in range(FETCHES):
                nursery.start_soon(resolve, i)
            await trio.testing.wait_all_tasks_blocked()
            stats = resolver.statistics()
            assert (stats.in_flight, stats.fetching) == (FETCHES, LIMIT)
            for i in range(FETCHES):
                nursery.start_soon(lambda i=i: trio.to_thread.run_sync(release, i, limiter=writers,
                                                                       abandon_on_cancel=True))
    assert values == {i: f"value-{i}" for i in range(FETCHES)}
    assert resolver.statistics().fetches == FETCHES
    assert resolver.statistics().fetching == 0


async def test_loading_and_selecting_fetches_no_secret(tmp_path):
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("""\
secrets:
  vault: {address: "http://127.0.0.1:9"}
clusters:
  - name: a
    connection: {kubeconfig: "vault:secret/tenants/a#kubeconfig"}
  - name: b
    connection: {masterUrl: https://b.example, token: "aws-sm:tenants/b#token"}
""")
    selected = await load_clusters([inventory], select=None)
    assert [c.name for c in selected.clusters] == ["a", "b"]
    assert selected.resolver.statistics().fetches == 0  # nothing is asked before a cluster is connected to
