"""A kubeconfig (file or mapping) turned into the kubernetes client's ``Configuration``, with the
certificate files the TLS layer needs kept private to one client.

urllib3 and the exec WebSocket read the CA, client certificate and key from files, for every new
connection. The official loader writes a kubeconfig's ``*-data`` entries to shared temporary files that
live until the process exits (and are reused across clients by content). Here the chosen context's
entries are written first, 0600 in a private 0700 directory, and handed to the loader as paths, so that
``KeyFiles.remove`` (``KubeClient.close``) deletes them; if a client is never closed, they go when it
is garbage-collected or at exit. Certificates an exec plugin returns at run time still go through the
loader's own temporary files.

Several files (``$KUBECONFIG=a.yaml:b.yaml``) are merged as kubectl merges them (``merge_kubeconfigs``).
"""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from fleet.errors import InputError, Location, truncate
from fleet.secrets.keyfiles import KeyFiles

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML has it

# (section, data key, file key) of what becomes a file.
_FILE_ENTRIES = (
    ("cluster", "certificate-authority-data", "certificate-authority"),
    ("user", "client-certificate-data", "client-certificate"),
    ("user", "client-key-data", "client-key"),
)
# The paths a kubeconfig's entries hold, relative to the file's folder (as kubectl reads them).
_PATH_KEYS = (("clusters", "cluster", ("certificate-authority",)),
              ("users", "user", ("client-certificate", "client-key", "tokenFile")))  # fmt: skip
_NAMED = ("clusters", "users", "contexts")


def _named(items: Any, name: Any, key: str) -> dict[str, Any] | None:
    for item in items or ():
        if isinstance(item, dict) and item.get("name") == name and isinstance(item.get(key), dict):
            section: dict[str, Any] = item[key]
            return section
    return None


def _data_to_files(
    config: dict[str, Any], context: str | None, files: KeyFiles, base_dir: Path | None
) -> dict[str, Any]:
    """A copy of ``config`` whose chosen context has its certificate ``*-data`` entries as private files,
    and its file paths relative to ``base_dir`` (the kubeconfig's folder, as kubectl reads them)."""
    config = copy.deepcopy(config)
    chosen = _named(config.get("contexts"), context or config.get("current-context"), "context")
    if chosen is None:
        return config  # the loader names the problem
    sections = {
        "cluster": _named(config.get("clusters"), chosen.get("cluster"), "cluster"),
        "user": _named(config.get("users"), chosen.get("user"), "user"),
    }
    if base_dir is not None:
        _absolute_paths(config, base_dir)
    for section_name, data_key, file_key in _FILE_ENTRIES:
        section = sections[section_name]
        if section is None or not section.get(data_key):
            continue
        try:
            content = base64.standard_b64decode(section[data_key])
        except (ValueError, TypeError) as e:
            raise InputError(f"{data_key} is not base64", location=Location(field=f"{section_name}.{data_key}")) from e
        section[file_key] = str(files.write(file_key, content))
        del section[data_key]
    return config


def _absolute_paths(config: dict[str, Any], base_dir: Path) -> None:
    """Every entry's file paths made absolute against ``base_dir`` (in place)."""
    for list_key, key, path_keys in _PATH_KEYS:
        for item in config.get(list_key) or ():
            section = item.get(key) if isinstance(item, dict) else None
            if not isinstance(section, dict):
                continue
            for path_key in path_keys:
                if isinstance(section.get(path_key), str) and section[path_key]:
                    section[path_key] = str(base_dir / Path(section[path_key]).expanduser())


def read_kubeconfig(kubeconfig: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The kubeconfig as a mapping, and what to call it in errors (its path, for a file)."""
    if not isinstance(kubeconfig, Path | str):
        return dict(kubeconfig), "<kubeconfig>"
    source = str(kubeconfig)
    try:
        config = yaml.load(Path(kubeconfig).expanduser().read_text(), Loader=_LOADER)
    except OSError as e:
        raise InputError(f"cannot read kubeconfig: {e.strerror}", location=Location(file=source)) from e
    except yaml.YAMLError as e:
        raise InputError(f"kubeconfig is not valid YAML: {e}", location=Location(file=source)) from e
    if not isinstance(config, dict):
        raise InputError("kubeconfig must be a mapping", location=Location(file=source))
    return config, source


def merge_kubeconfigs(paths: Sequence[Path]) -> tuple[dict[str, Any], str]:
    """Several kubeconfig files as one, merged as kubectl merges ``$KUBECONFIG``: a file that does not
    exist is skipped; a cluster, user or context comes from the first file that has one of its name;
    ``current-context`` (and any other top-level value) from the first file that sets it; each file's
    relative paths are relative to its own folder. Also what to call the files in errors."""
    source = os.pathsep.join(str(p) for p in paths)
    existing = [p for p in paths if p.expanduser().exists()]
    if not existing:
        raise InputError(f"none of the {len(paths)} kubeconfig files exists", location=Location(file=source))
    merged: dict[str, Any] = {}
    for path in existing:
        config = copy.deepcopy(read_kubeconfig(path)[0])
        _absolute_paths(config, path.expanduser().parent)
        for key, value in config.items():
            if key in _NAMED:
                entries = merged.setdefault(key, [])
                for item in value or ():
                    if isinstance(item, dict) and item.get("name") not in {e.get("name") for e in entries}:
                        entries.append(item)
            elif value not in (None, "", [], {}) and key not in merged:
                merged[key] = value
    return merged, source


def check_context(config: Mapping[str, Any], context: str | None, source: str) -> str:
    """The context to use (``context``, else the current one); an ``InputError`` naming the file's
    contexts when it has no such context."""
    names = [str(c.get("name")) for c in config.get("contexts") or () if isinstance(c, dict) and c.get("name")]
    have = f"its contexts: {', '.join(names)}" if names else "it has no contexts"
    wanted = context or config.get("current-context")
    if not wanted:
        raise InputError(f"the kubeconfig has no current-context and no context was named; {have}",
                         location=Location(file=source))
    if wanted not in names:
        raise InputError(f"the kubeconfig has no context {wanted!r}; {have}", location=Location(file=source))
    return str(wanted)


def read_kubeconfigs(paths: Sequence[Path]) -> tuple[dict[str, Any], str]:
    """``read_kubeconfig`` of one file; several files merged as kubectl merges them (``merge_kubeconfigs``)."""
    return read_kubeconfig(paths[0]) if len(paths) == 1 else merge_kubeconfigs(paths)


def check_contexts(config: Mapping[str, Any], contexts: Sequence[str], source: str) -> list[str]:
    """The contexts to use (``contexts``, else the current one); fails early (before any cluster is
    contacted) when the kubeconfig lacks one of them."""
    return [check_context(config, context, source) for context in contexts or (None,)]


def fixed_credentials(config: Mapping[str, Any], context: str | None) -> bool:
    """Whether the user of ``context`` (default: the current one) authenticates with what the official
    loader reads once and never changes while the client lives (a token, a token file, certificates, a
    password): not an ``exec`` plugin or an ``auth-provider``, whose tokens it renews as they expire."""
    chosen = _named(config.get("contexts"), context or config.get("current-context"), "context")
    user = _named(config.get("users"), chosen.get("user"), "user") if chosen is not None else None
    return user is None or not ({"exec", "auth-provider"} & set(user))


def load_configuration(
    config: dict[str, Any], *, context: str | None, source: str, files: KeyFiles, base_dir: Path | None = None
) -> k8s_client.Configuration:
    """The client ``Configuration`` for ``context`` (default: the current one); certificate files in
    ``files``; relative paths against ``base_dir`` (default: the working directory)."""
    check_context(config, context, source)
    configuration = k8s_client.Configuration()
    try:
        load: Any = k8s_config.load_kube_config_from_dict
        load(
            _data_to_files(config, context, files, base_dir),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except k8s_config.ConfigException as e:
        files.remove()
        where = Location(file=source, field=f"contexts[{context}]" if context else None)
        raise InputError(f"kubeconfig cannot be used: {truncate(str(e), 300)}", location=where) from e
    configuration.retries = False  # fleet owns retries (fleet.kube.retry)
    return configuration
