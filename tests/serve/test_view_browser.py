"""The run view in a real headless browser (Debian's chromium driven by Playwright) while a ``fleet run``
goes on on the simulated fleet: the run appears in the list, its grid shows every cluster from the start
and each cell moves pending → running → succeeded/failed without a reload, the failing cluster's log lines
are shown (as text, never as markup), and the outcome and tenant filters pick the rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Locator, Page, expect, sync_playwright

from fleet.sim import SimFleet
from tests.engine.conftest import Fleet, close, inventory
from tests.serve.view_server import TOKEN, served
from tests.tools import require_tool

pytestmark = [pytest.mark.sim_only, pytest.mark.slow]

#: Each wait of the browser for what the run does (the whole test takes about 20 s).
WAIT_MS = 30_000
TENANTS = {"sim-0": "tenant-a", "sim-1": "tenant-a", "sim-2": "tenant-b"}

# A gate first (``fleet approve``), so the page is open before any cluster starts; each pod takes a few
# seconds, so every cluster is seen running; sim-1's pod fails after printing why.
PLAYBOOK = """
id: view-demo
strategy:
  concurrency: 3
  waves:
    - {name: all, rest: true, manual: true}
steps:
  - id: work
    type: pod
    namespace: default
    image: busybox
    commands:
      - "echo starting on {{ cluster.name }}"
      - "sleep 3"
      - "if [ {{ cluster.name }} = sim-1 ]; then echo 'disk <b>full</b> on sim-1'; echo 'giving up'; exit 3; fi"
      - "echo done on {{ cluster.name }}"
"""

# Every change of a row's outcome, in order, per cluster: what the page showed, whatever the test's polling
# saw of it.
HISTORY = """
() => {
  window.outcomes = {};
  const note = (tr) => {
    const seen = (window.outcomes[tr.dataset.cluster] ||= []);
    if (seen[seen.length - 1] !== tr.dataset.outcome) seen.push(tr.dataset.outcome);
  };
  const grid = document.querySelector("#grid tbody");
  grid.querySelectorAll("tr").forEach(note);
  new MutationObserver((changes) => changes.forEach((c) => {
    const tr = c.target.closest ? c.target.closest("tr") : null;
    if (tr && tr.dataset.cluster) note(tr);
    c.addedNodes.forEach((n) => { if (n.dataset && n.dataset.cluster) note(n); });
  })).observe(grid, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-outcome"] });
}
"""


@pytest.fixture
def chromium() -> str:
    return require_tool("chromium", "Debian's package: apt-get install -y chromium")


@pytest.fixture
def page(chromium: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            yield page
        finally:
            browser.close()


def _inventory(sim: SimFleet, path: Path) -> Path:
    inventory(sim, path)
    doc = yaml.safe_load(path.read_text())
    for entry in doc["clusters"]:
        entry["tenant"] = TENANTS[entry["name"]]
    doc["clusters"] = [e for e in doc["clusters"] if e["name"] in TENANTS]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _row(page: Page, cluster: str) -> Locator:
    return page.locator(f'#grid tbody tr[data-cluster="{cluster}"]')


def test_the_grid_follows_a_run_on_the_sim(sim: SimFleet, tmp_path: Path, page: Page) -> None:
    fleet = Fleet(tmp_path)
    playbook = tmp_path / "view-demo.yaml"
    playbook.write_text(PLAYBOOK)
    inv = _inventory(sim, tmp_path / "inventory.yaml")
    with served(fleet.journal) as url:
        page.goto(f"{url}/#token={TOKEN}")
        expect(page.locator("#runs-empty")).to_be_visible()
        assert "token" not in page.url  # taken from the address, kept in the tab's session only

        process = fleet.popen("run", str(playbook), "-i", str(inv), "-o", "json")
        try:
            link = page.locator("#runs tbody tr a")
            expect(link).to_have_count(1)  # the list refreshes by itself
            run_id = link.inner_text()
            assert run_id.startswith("view-demo-")
            link.click()
            page.wait_for_url(f"**/runs/{run_id}")
            for cluster in TENANTS:  # every cluster from the start, before the gate opens
                expect(_row(page, cluster)).to_have_attribute("data-outcome", "pending")
            page.evaluate(HISTORY)

            approved = fleet("approve", run_id)
            assert approved.returncode == 0, approved.stderr
            expect(_row(page, "sim-0")).to_have_attribute("data-outcome", "running")
            expect(_row(page, "sim-0").locator("td").nth(3)).to_contain_text("work (running)")
            expect(_row(page, "sim-1")).to_have_attribute("data-outcome", "failed")
            expect(_row(page, "sim-0")).to_have_attribute("data-outcome", "succeeded")
            expect(_row(page, "sim-2")).to_have_attribute("data-outcome", "succeeded")
            expect(page.locator("#run-status")).to_have_attribute("data-status", "failed")
            expect(page.locator("#live")).to_have_text("ended")
            history = page.evaluate("window.outcomes")  # still there: the page was never reloaded
            assert history == {
                "sim-0": ["pending", "running", "succeeded"],
                "sim-1": ["pending", "running", "failed"],
                "sim-2": ["pending", "running", "succeeded"],
            }
            process.wait(timeout=WAIT_MS / 1000)
            assert process.returncode == 1
        finally:
            close(process)

        # The failing cluster: its error in the grid, its lines in the log pane, as text.
        error = _row(page, "sim-1").locator("td").nth(5)
        expect(error).to_have_text("container main exited with 3 (Error)")
        expect(error).to_have_attribute("title", re.compile("last log lines of main"))
        _row(page, "sim-1").click()
        expect(page.locator("#logs-title")).to_contain_text("Logs of sim-1")
        logs = page.locator("#logs")
        expect(logs).to_contain_text("sim-1/work: disk <b>full</b> on sim-1")
        expect(logs).to_contain_text("sim-1/work: giving up")
        expect(logs.locator("b")).to_have_count(0)  # a pod's output is never markup
        expect(logs).not_to_contain_text("sim-0/work", use_inner_text=True)  # the selected cluster's lines only
        assert "cluster=sim-1" in page.url
        _row(page, "sim-1").click()  # again: every cluster's lines
        expect(logs).to_contain_text("sim-0/work: done on sim-0")

        # Filters: by outcome, by tenant, both; kept in the address.
        visible = page.locator("#grid tbody tr:visible")
        page.select_option("#outcome-filter", "failed")
        expect(visible).to_have_count(1)
        expect(visible.first).to_have_attribute("data-cluster", "sim-1")
        expect(logs).not_to_contain_text("sim-0/work", use_inner_text=True)  # the lines of the clusters shown
        page.select_option("#outcome-filter", "")
        page.select_option("#tenant-filter", "tenant-a")
        expect(visible).to_have_count(2)
        page.select_option("#outcome-filter", "succeeded")
        expect(visible).to_have_count(1)
        expect(visible.first).to_have_attribute("data-cluster", "sim-0")
        assert "outcome=succeeded" in page.url
        assert "tenant=tenant-a" in page.url
        page.reload()  # the filters come back from the address
        expect(_row(page, "sim-0")).to_be_visible()
        expect(visible).to_have_count(1)
        expect(page.locator("#counts")).to_contain_text("1 of 3 shown")


def test_a_refused_token_asks_for_one(tmp_path: Path, page: Page) -> None:
    with served(tmp_path / "journal.db") as url:
        page.goto(f"{url}/#token=wrong")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#login-error")).to_contain_text("refused (401)")
        page.fill("#token-input", TOKEN)
        page.click("#login button")
        expect(page.locator("#runs-empty")).to_be_visible()
