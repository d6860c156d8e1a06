"""A tenant list from an inventory API: JSON over HTTPS with a bearer token from a secret reference;
each record is mapped to a cluster entry by a small sandboxed Jinja2 template that renders YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml
from jinja2 import TemplateError
from pydantic import ValidationError

from fleet.inventory.models import ApiSource, Cluster, ClusterSpec, DefaultsSpec, MissingConnection
from fleet.inventory.yaml_lines import dotted
from fleet.templating import TEMPLATES

REQUEST_TIMEOUT = (10.0, 30.0)


def fetch_records(source: ApiSource, token: str | None, base_dir: Path) -> list[Any]:
    """GET the API (blocking) and return its list of records."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    verify: bool | str = True
    if source.ca_file:
        ca = Path(source.ca_file).expanduser()
        verify = str(ca if ca.is_absolute() else base_dir / ca)
    try:
        response = requests.get(source.url, headers=headers, timeout=REQUEST_TIMEOUT, verify=verify)
    except requests.RequestException as e:
        raise ValueError(f"GET {source.url} failed: {type(e).__name__}") from None
    if response.status_code != 200:
        raise ValueError(f"GET {source.url} answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        raise ValueError(f"GET {source.url} did not answer JSON") from None
    records = data.get(source.records) if source.records and isinstance(data, dict) else data
    if not isinstance(records, list):
        where = f"the key {source.records!r}" if source.records else "the response"
        raise ValueError(f"{where} of {source.url} is not a list of records")
    return records


def api_entries(
    source: ApiSource, records: list[Any], defaults: DefaultsSpec, base_dir: Path, origin: str
) -> list[Cluster]:
    """Render every record through the template and validate the result as a cluster entry."""
    try:
        template = TEMPLATES.from_string(source.template)
    except TemplateError as e:
        raise ValueError(f"the template does not parse: {e}") from None
    entries = []
    for index, record in enumerate(records):
        where = f"record {index}"
        try:
            rendered = yaml.safe_load(template.render(record=record))
        except TemplateError as e:
            raise ValueError(f"{where}: the template failed: {e}") from None
        except yaml.YAMLError:
            raise ValueError(f"{where}: the template did not render YAML") from None
        try:
            spec = ClusterSpec.model_validate(rendered)
        except ValidationError as e:
            first = e.errors(include_url=False)[0]
            raise ValueError(f"{where}: {dotted(tuple(first['loc'])) or 'entry'}: {first['msg']}") from None
        try:
            entries.append(spec.with_defaults(defaults, origin=f"{origin}: {where}", base_dir=base_dir))
        except MissingConnection:
            raise ValueError(f"{where}: the entry has no connection") from None
    return entries
