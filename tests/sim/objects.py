"""Object bodies the sim tests send through the official client."""

from __future__ import annotations

from typing import Any


def deployment(name: str, replicas: int = 2, image: str = "nginx:1.27", **spec: Any) -> dict[str, Any]:
    """A Deployment labelled ``app: name`` whose pods carry that label and run one container ``main``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
            **spec,
        },
    }
