"""Pod log lines through the journal's one writer: queued without waiting from many tasks at once, while
the writer's thread commits earlier batches, every line lands, in order, once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import trio

from fleet.engine.journal import Journal, JournalReader

RUN = "chatty-20261203-000000-0000"
CLUSTERS = [f"sim-{i}" for i in range(8)]
LINES = 400


async def test_lines_from_many_tasks_all_land_in_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with Journal.open(path) as journal:
        await journal.run_started(RUN, Path("chatty.yaml"), "chatty", {}, {})

        async def talk(cluster: str) -> None:
            for n in range(LINES):
                journal.log_line_nowait(RUN, cluster, "talk", "main", f"{cluster} line {n}", datetime.now(UTC))
                if n % 100 == 0:  # awaited writes in between, as a pod step's journal rows are
                    await journal.step_started(RUN, cluster, f"step-{n}", 1, "pod")
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            for cluster in CLUSTERS:
                nursery.start_soon(talk, cluster)
    reader = JournalReader(path, read_only=True)
    try:
        lines = []
        while batch := reader.log_lines(RUN, after=lines[-1]["seq"] if lines else 0, limit=700):
            lines += batch
        for cluster in CLUSTERS:
            mine = reader.log_lines(RUN, cluster=cluster, limit=LINES + 1)
            assert [line["line"] for line in mine] == [f"{cluster} line {n}" for n in range(LINES)]
    finally:
        reader.close()
    assert len(lines) == len(CLUSTERS) * LINES
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(set(seqs))
