"""Every context of a kubeconfig file (or those matching globs) as a cluster entry."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import yaml

from fleet.inventory.models import Cluster, ConnectionSpec, DefaultsSpec, KubeconfigSource, valid_name


def kubeconfig_entries(source: KubeconfigSource, base_dir: Path, defaults: DefaultsSpec, origin: str) -> list[Cluster]:
    """One entry per matching context; the kubeconfig stays a ``file:`` reference (read at connect time)."""
    path = Path(source.path).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    except yaml.YAMLError:
        raise ValueError(f"{path} is not valid YAML") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a kubeconfig")
    entries = []
    for context in data.get("contexts") or []:
        name = context.get("name") if isinstance(context, dict) else None
        if not isinstance(name, str) or not any(fnmatch.fnmatchcase(name, g) for g in source.contexts):
            continue
        if not valid_name(name):
            raise ValueError(f"context {name!r} of {path} is not a valid cluster name")
        entries.append(Cluster(
            name=name,
            tenant=source.tenant or defaults.tenant,
            region=defaults.region,
            labels={**defaults.labels, **source.labels},
            connection=ConnectionSpec(kubeconfig=f"file:{path}", context=name),
            auth=defaults.auth,
            origin=f"{origin}: context {name}",
            base_dir=base_dir,
        ))
    return entries
