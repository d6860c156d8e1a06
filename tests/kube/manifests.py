"""Manifests the kube tests apply. Every image runs without a command on a real cluster too (the sim
runs containers without a command as "virtual" ones): nginx, and the pause image for sidecars."""

from __future__ import annotations

PAUSE = "registry.k8s.io/pause:3.10"


def deployment(
    name: str = "web", *, replicas: int = 2, image: str = "nginx", progress_deadline: int | None = None
) -> str:
    deadline = f"\n  progressDeadlineSeconds: {progress_deadline}" if progress_deadline is not None else ""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}{deadline}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: main
          image: {image}
        - name: sidecar
          image: {PAUSE}
"""


def statefulset(name: str = "db", *, replicas: int = 2) -> str:
    return f"""
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  serviceName: {name}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: main, image: nginx}}]
"""


def service(name: str = "web") -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80}}]
"""


def configmap(name: str = "settings", **data: str) -> str:
    items = ", ".join(f"{k}: {v!r}" for k, v in (data or {"a": "1"}).items())
    return f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}}}
data: {{{items}}}
"""


CRD_AND_CR = """
apiVersion: example.fleet.dev/v1
kind: Widget
metadata: {name: first}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.fleet.dev}
spec:
  group: example.fleet.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
"""


def daemonset(name: str = "agent") -> str:
    return f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: main, image: {PAUSE}}}]
"""


def pod(name: str, image: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers: [{{name: main, image: "{image}"}}]
"""


def failing_job(name: str = "fails") -> str:
    """A Job whose only pod exits 3 at once, with no retries: it ends Failed (BackoffLimitExceeded)."""
    return f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: busybox, command: [sh, -c, "exit 3"]}}]
"""
