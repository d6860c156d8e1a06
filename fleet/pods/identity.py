"""Who a pod belongs to: the labels that identify run, cluster, step and attempt, and readable pod names."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass

MANAGED_BY = "app.kubernetes.io/managed-by"
RUN_LABEL = "fleet.dev/run-id"
CLUSTER_LABEL = "fleet.dev/cluster"
STEP_LABEL = "fleet.dev/step-id"
ATTEMPT_LABEL = "fleet.dev/attempt"
#: The unshortened identity, for humans and for labels that had to be shortened.
IDENTITY_ANNOTATION = "fleet.dev/identity"

MAX_LABEL_VALUE = 63
MAX_POD_NAME = 63
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class PodIdentity:
    """The run, cluster, step and attempt a pod step belongs to."""

    run_id: str
    cluster: str
    step_id: str
    attempt: int = 1

    def labels(self) -> dict[str, str]:
        """Every label fleet puts on the pod."""
        return {**self.selector_labels(), ATTEMPT_LABEL: str(self.attempt)}

    def selector_labels(self) -> dict[str, str]:
        """The labels resume matches on: run, cluster and step, not the attempt."""
        return {
            MANAGED_BY: "fleet",
            RUN_LABEL: label_value(self.run_id),
            CLUSTER_LABEL: label_value(self.cluster),
            STEP_LABEL: label_value(self.step_id),
        }

    def label_selector(self) -> str:
        return ",".join(f"{key}={value}" for key, value in self.selector_labels().items())


def label_value(text: str) -> str:
    """A valid label value (≤ 63 characters of ``[A-Za-z0-9._-]``, alphanumeric ends) that stays unique:
    when ``text`` had to change, a short hash of the original is appended."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("._-")
    if cleaned == text and len(text) <= MAX_LABEL_VALUE:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = cleaned[: MAX_LABEL_VALUE - len(digest) - 1].rstrip("._-")
    return f"{head}-{digest}" if head else digest


def pod_name(step_id: str, *, suffix_length: int = 6) -> str:
    """A readable DNS-1123 name from the step id plus a random suffix, at most 63 characters."""
    slug = re.sub(r"[^a-z0-9-]+", "-", step_id.lower()).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)[: MAX_POD_NAME - suffix_length - 1].rstrip("-") or "pod"
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(suffix_length))
    return f"{slug}-{suffix}"
