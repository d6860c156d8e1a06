"""``fleet serve``: runs started by events over HTTP(S) — a POST starts a run of a served playbook (one
run per event id), a GET reads its status and report from the journal; the web run view shows the runs live.

- ``config``: ``ServeConfig`` (what the server is given) and ``ServeSecrets`` (what it resolves);
- ``auth``: the one authentication check (bearer token, or an HMAC signature with a timestamp);
- ``app``: ``build_app`` (Starlette) and the API's routes; ``openapi``: their OpenAPI document;
- ``catalog``: the served playbooks; ``runs``: a request's inputs checked and its clusters selected;
- ``deliveries``: one run per event id, in the journal; ``launchers``: in-process runs or Kubernetes Jobs;
- ``server``: hypercorn's trio worker, TLS;
- ``view``, ``view_openapi``, ``static/``: the web run view at ``/`` (docs/run-view.md), read-only, behind
  the same authentication.

A layer of its own, below ``fleet.cli`` and above the engine and the reports it uses.
"""
