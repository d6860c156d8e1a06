// The run view of `fleet serve` (fleet/serve/view.py serves it and its data). Plain JavaScript, no build.
// Every text from the journal goes in as textContent, never as markup: log lines are whatever pods print.
"use strict";

(() => {
  const TOKEN_KEY = "fleet-token";
  const RUNS_EVERY_MS = 2000;
  const MAX_LINES = 5000; // log lines kept on the page; older ones are dropped

  const $ = (id) => document.getElementById(id);

  // -- the token: from the address's #token=… once (a fragment never reaches a server or its logs), then
  // from this tab's session storage; asked for when missing or refused.
  function takeTokenFromFragment() {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  class Refused extends Error {}

  function askToken(message) {
    $("runs-view").hidden = true;
    $("run-view").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("token-input").focus();
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
    $("login").hidden = true;
    start();
  });

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
    if (response.status === 401 || response.status === 403) {
      throw new Refused(`the token was refused (${response.status})`);
    }
    if (!response.ok) {
      throw new Error(`${path}: ${response.status} ${await response.text()}`);
    }
    return response.json();
  }

  function problem(error) {
    if (error instanceof Refused) {
      askToken(error.message);
      return;
    }
    $("problem").hidden = false;
    $("problem").textContent = String(error.message || error);
  }

  function words(outcome) {
    return (outcome || "").replaceAll("_", " ");
  }

  function time(iso) {
    return iso ? iso.slice(0, 19).replace("T", " ") : "";
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  // -- the runs --------------------------------------------------------------------------------------------

  async function showRuns() {
    $("where").textContent = "runs";
    $("runs-view").hidden = false;
    for (;; await new Promise((resolve) => setTimeout(resolve, RUNS_EVERY_MS))) {
      let runs;
      try {
        runs = await api("/view/api/runs");
      } catch (error) {
        if (error instanceof Refused) throw error;
        problem(error); // the server restarting, say: tried again at the next refresh
        continue;
      }
      $("problem").hidden = true;
      const body = $("runs").tBodies[0];
      body.replaceChildren();
      for (const run of runs) {
        const row = body.insertRow();
        row.dataset.run = run.id;
        const link = document.createElement("a");
        link.href = `/runs/${encodeURIComponent(run.id)}`;
        link.textContent = run.id;
        row.insertCell().append(link);
        cell(row, run.playbook_id);
        cell(row, words(run.status), `outcome ${run.status}`);
        cell(row, time(run.started));
        cell(row, time(run.ended));
        const counts = Object.entries(run.clusters || {}).map(([o, n]) => `${n} ${words(o)}`);
        cell(row, counts.join(", "));
      }
      $("runs-empty").hidden = runs.length > 0;
      $("live").textContent = `updated ${new Date().toLocaleTimeString()}`;
    }
  }

  // -- one run ---------------------------------------------------------------------------------------------

  class RunView {
    constructor(runId) {
      this.runId = runId;
      this.rows = new Map(); // cluster -> its last row from the server
      this.cells = new Map(); // cluster -> its <tr>
      const query = new URLSearchParams(location.search);
      this.filters = { outcome: query.get("outcome") || "", tenant: query.get("tenant") || "" };
      this.selected = query.get("cluster") || "";
      this.source = null;
      $("outcome-filter").value = this.filters.outcome;
      $("outcome-filter").addEventListener("change", (e) => this.filter("outcome", e.target.value));
      $("tenant-filter").addEventListener("change", (e) => this.filter("tenant", e.target.value));
    }

    async start() {
      $("where").textContent = "run";
      $("run-id").textContent = this.runId;
      await api(`/view/api/runs/${encodeURIComponent(this.runId)}`); // a refused token or no such run, said plainly
      $("run-view").hidden = false;
      this.connect();
    }

    connect() {
      if (this.source) this.source.close();
      $("logs").replaceChildren();
      this.showLogsTitle();
      const query = new URLSearchParams({ token: token() });
      if (this.selected) query.set("cluster", this.selected);
      const source = new EventSource(`/view/api/runs/${encodeURIComponent(this.runId)}/events?${query}`);
      this.source = source;
      $("live").textContent = "connecting";
      source.addEventListener("open", () => { $("live").textContent = "live"; });
      source.addEventListener("run", (e) => this.onRun(JSON.parse(e.data)));
      source.addEventListener("clusters", (e) => this.onClusters(JSON.parse(e.data)));
      source.addEventListener("logs", (e) => this.onLogs(JSON.parse(e.data)));
      source.addEventListener("end", () => {
        source.close();
        $("live").textContent = "ended";
      });
      source.addEventListener("error", () => {
        // EventSource retries by itself; a closed one was refused (the token, or the run is gone).
        $("live").textContent = source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting";
        if (source.readyState === EventSource.CLOSED) {
          api(`/view/api/runs/${encodeURIComponent(this.runId)}`).catch(problem);
        }
      });
    }

    onRun(run) {
      $("run-status").textContent = words(run.status);
      $("run-status").className = `outcome ${run.status}`;
      $("run-status").dataset.status = run.status;
      $("run-playbook").textContent = run.playbook_id;
      $("run-message").textContent = run.message || "";
    }

    onClusters(rows) {
      for (const row of rows) {
        this.rows.set(row.cluster, row);
        let tr = this.cells.get(row.cluster);
        if (!tr) {
          tr = this.insertRow(row);
          this.cells.set(row.cluster, tr);
        }
        tr.dataset.outcome = row.outcome;
        tr.dataset.tenant = row.tenant || "";
        tr.cells[2].textContent = row.tenant || "";
        const step = row.step ? `${row.step} (${words(row.stepStatus)}${row.attempt > 1 ? `, attempt ${row.attempt}` : ""})` : "";
        tr.cells[3].textContent = step;
        tr.cells[4].textContent = words(row.outcome);
        tr.cells[4].className = `outcome ${row.outcome}`;
        // The error's first line; the whole of it (a pod's last log lines, say) on hover.
        tr.cells[5].textContent = (row.error || "").split("\n", 1)[0];
        tr.cells[5].title = row.error || "";
      }
      this.tenants();
      this.apply();
    }

    insertRow(row) {
      // In wave order, then by name: where the roster put it, or where it belongs.
      const body = $("grid").tBodies[0];
      const key = (r) => [r.wave, r.cluster];
      let before = null;
      for (const tr of body.rows) {
        const other = this.rows.get(tr.dataset.cluster);
        const [w1, c1] = key(row);
        const [w2, c2] = key(other);
        if (w1 < w2 || (w1 === w2 && c1 < c2)) {
          before = tr;
          break;
        }
      }
      const tr = document.createElement("tr");
      body.insertBefore(tr, before);
      tr.dataset.cluster = row.cluster;
      cell(tr, row.cluster, "cluster");
      cell(tr, row.wave);
      for (let i = 0; i < 4; i++) tr.insertCell();
      tr.addEventListener("click", () => this.select(row.cluster));
      return tr;
    }

    tenants() {
      const select = $("tenant-filter");
      const known = new Set([...select.options].map((o) => o.value));
      const tenants = [...new Set([...this.rows.values()].map((r) => r.tenant).filter(Boolean))].sort();
      for (const tenant of tenants) {
        if (!known.has(tenant)) select.add(new Option(tenant, tenant));
      }
      select.value = this.filters.tenant;
    }

    matches(row) {
      return (!this.filters.outcome || row.outcome === this.filters.outcome)
        && (!this.filters.tenant || row.tenant === this.filters.tenant);
    }

    apply() {
      const counts = new Map();
      let shown = 0;
      for (const [name, tr] of this.cells) {
        const row = this.rows.get(name);
        counts.set(row.outcome, (counts.get(row.outcome) || 0) + 1);
        tr.hidden = !this.matches(row);
        tr.classList.toggle("selected", name === this.selected);
        if (!tr.hidden) shown += 1;
      }
      const parts = [...counts].map(([o, n]) => `${n} ${words(o)}`);
      $("counts").textContent = `${shown} of ${this.rows.size} shown · ${parts.join(" · ")}`;
      for (const line of $("logs").children) this.showLine(line);
    }

    filter(name, value) {
      this.filters[name] = value;
      this.remember();
      this.apply();
    }

    select(cluster) {
      this.selected = this.selected === cluster ? "" : cluster;
      this.remember();
      this.connect(); // the server sends the selected cluster's lines only
    }

    remember() {
      const query = new URLSearchParams();
      if (this.filters.outcome) query.set("outcome", this.filters.outcome);
      if (this.filters.tenant) query.set("tenant", this.filters.tenant);
      if (this.selected) query.set("cluster", this.selected);
      const search = query.toString();
      history.replaceState(null, "", location.pathname + (search ? `?${search}` : ""));
    }

    showLogsTitle() {
      $("logs-title").textContent = this.selected
        ? `Logs of ${this.selected} (click it again for every cluster's)`
        : "Logs of the clusters shown (click a cluster for its own)";
    }

    showLine(div) {
      const row = this.rows.get(div.dataset.cluster);
      div.hidden = row !== undefined && !this.matches(row);
    }

    onLogs(lines) {
      const pane = $("logs");
      const atBottom = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
      for (const line of lines) {
        const div = document.createElement("div");
        div.className = "line";
        div.dataset.cluster = line.cluster;
        div.dataset.seq = line.seq;
        const where = document.createElement("span");
        where.className = "where";
        where.textContent = `${line.cluster}/${line.step}: `;
        div.append(where, document.createTextNode(line.line));
        this.showLine(div);
        pane.append(div);
      }
      while (pane.children.length > MAX_LINES) pane.firstElementChild.remove();
      if (atBottom) pane.scrollTop = pane.scrollHeight;
    }
  }

  // -- start -----------------------------------------------------------------------------------------------

  let runView = null; // one per page: it owns the filters' listeners

  function start() {
    $("problem").hidden = true;
    if (!token()) {
      askToken("");
      return;
    }
    const match = /^\/runs\/([^/]+)$/.exec(location.pathname);
    if (match) runView ||= new RunView(decodeURIComponent(match[1]));
    (runView ? runView.start() : showRuns()).catch(problem);
  }

  takeTokenFromFragment();
  start();
})();
