"""The options of a pod step, as users write them (camelCase, as in the seeds), validated once.

Two forms: a full pod ``spec`` (+ ``metadata``), or the task-runner shorthand (``image`` plus ``commands``
or a ``script`` run by an ``interpreter``), which becomes a pod whose main container is named ``main``.
Durations are ISO 8601 (``PT10M``) and become ``timedelta``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from fleet.artifacts import key_from_uri
from fleet.errors import InputError

JsonMap = dict[str, Any]

PULL_POLICIES = {"always": "Always", "ifnotpresent": "IfNotPresent", "never": "Never"}


class _Options(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Resources(_Options):
    """Requests and limits of the main container, e.g. ``{request: {cpu: 500m}, limit: {nvidia.com/gpu: "1"}}``."""

    request: dict[str, str] = Field(default_factory=dict, validation_alias=AliasChoices("request", "requests"))
    limit: dict[str, str] = Field(default_factory=dict, validation_alias=AliasChoices("limit", "limits"))

    @field_validator("request", "limit", mode="before")
    @classmethod
    def _quantities_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    def as_requirements(self) -> JsonMap:
        """The Kubernetes ``ResourceRequirements`` form."""
        requirements: JsonMap = {}
        if self.request:
            requirements["requests"] = dict(self.request)
        if self.limit:
            requirements["limits"] = dict(self.limit)
        return requirements


class FileSidecar(_Options):
    """The containers that move files: image (needs ``sh``, ``test``, ``sleep``, ``tar``), resources, defaults."""

    #: Their image.
    image: str = "busybox"
    #: Their requests and limits.
    resources: JsonMap | None = None
    #: Container fields merged under theirs (default: ``containerDefaultSpec``).
    default_spec: JsonMap | None = None


class Credentials(_Options):
    """Image pull credentials: fleet creates a temporary dockerconfigjson Secret with the pod."""

    #: The registry's host (``registry.example.com``).
    registry: str
    #: The user name.
    username: str
    #: The password or token (from a secret: ``{{ secret(REFERENCE) }}``).
    password: SecretStr


class InputFile(_Options):
    """One input file: literal ``content`` (a template) or an ``artifact`` reference from an earlier step."""

    #: The file's text (a template).
    content: str | None = None
    #: An ``artifact://`` reference to a file an earlier step collected.
    artifact: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> InputFile:
        if (self.content is None) == (self.artifact is None):
            raise ValueError("an input file needs exactly one of 'content' or 'artifact'")
        if self.artifact is not None:
            try:
                key_from_uri(self.artifact)
            except InputError as e:
                raise ValueError(e.message) from e
        return self


class PodTask(_Options):
    """Every option of a pod step with the seeds' defaults."""

    #: Where the pod runs.
    namespace: str = "default"
    #: The pod's metadata (labels, annotations); fleet adds its own labels.
    metadata: JsonMap | None = None
    #: The task runner's ``labels`` (seed 002): added to ``metadata.labels``, which win on a clash.
    labels: dict[str, str] = Field(default_factory=dict)
    #: A full pod spec (instead of ``image``).
    spec: JsonMap | None = None

    #: The main container's image (the shorthand form, with ``commands`` or ``script``).
    image: str | None = Field(default=None, validation_alias=AliasChoices("image", "containerImage"))
    #: Commands run one after another by ``interpreter`` (templates; ``{{ outputDir }}`` is where output files go).
    commands: list[str] | None = None
    #: A script run by ``interpreter`` (a template).
    script: str | None = None
    #: What runs ``commands`` or ``script``.
    interpreter: list[str] = Field(default_factory=lambda: ["/bin/sh", "-c"])
    #: Environment variables of the main container.
    env: dict[str, str] = Field(default_factory=dict)

    #: Files put in the working directory before the main container starts: name to content, or an
    #: ``artifact://`` reference.
    input_files: dict[str, InputFile] = Field(default_factory=dict)
    #: Globs of the working directory's files to collect as artifacts (``**`` spans folders).
    output_files: list[str] = Field(default_factory=list)
    #: Collect every file of the output directory (``{{ outputDir }}``).
    output_directory: bool = False
    #: Collect every file of the working directory.
    sync_working_directory: bool = False

    #: The main container's requests and limits.
    resources: Resources | None = None
    #: The pod's node selector.
    node_selector: dict[str, str] | None = None
    #: The pod's service account.
    service_account_name: str | None = None
    #: The main container's image pull policy (``ALWAYS``, ``IF_NOT_PRESENT`` are accepted too).
    pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    #: Registry credentials for pulling the image.
    credentials: Credentials | None = None

    #: Container fields merged under the main container's own.
    container_spec: JsonMap | None = None
    #: Pod spec fields merged under the pod's own (its ``containers`` merge by name).
    pod_spec: JsonMap | None = None
    #: Container fields merged under every container's.
    container_default_spec: JsonMap | None = None
    #: The containers that move the input and output files.
    file_sidecar: FileSidecar = Field(default_factory=FileSidecar)
    #: Container fields merged under the file-moving containers'.
    file_sidecar_spec: JsonMap | None = Field(
        default=None, validation_alias=AliasChoices("fileSideCarSpec", "fileSidecarSpec", "file_sidecar_spec")
    )

    #: How long the pod may take to start.
    wait_until_running: timedelta = timedelta(minutes=10)
    #: How long the pod may run.
    wait_until_completion: timedelta = timedelta(hours=1)
    #: How long to wait for the log streams to end after the pod finished.
    wait_for_logs: timedelta = timedelta(seconds=30)
    #: Delete the pod when it is done.
    delete: bool = True
    #: On ``fleet resume``, reattach to the step's pod if it is still there instead of starting another.
    resume: bool = True

    @field_validator("input_files", mode="before")
    @classmethod
    def _input_file_shorthand(cls, value: Any) -> Any:
        """A plain string is content, unless it is an ``artifact://`` reference."""
        if not isinstance(value, dict):
            return value
        files: dict[str, Any] = {}
        for name, item in value.items():
            if isinstance(item, str):
                is_reference = item.startswith("artifact://") and not any(c.isspace() for c in item)
                files[name] = {"artifact": item} if is_reference else {"content": item}
            else:
                files[name] = item
        return files

    @field_validator("input_files")
    @classmethod
    def _safe_names(cls, value: dict[str, InputFile]) -> dict[str, InputFile]:
        for name in value:
            problem = unsafe_relative_path(name)
            if problem:
                raise ValueError(f"input file name {name!r} {problem}")
        return value

    @field_validator("pull_policy", mode="before")
    @classmethod
    def _pull_policy(cls, value: Any) -> Any:
        """Accept the seeds' spelling (``ALWAYS``, ``IF_NOT_PRESENT``) as well as Kubernetes'."""
        if isinstance(value, str):
            return PULL_POLICIES.get(value.replace("_", "").lower(), value)
        return value

    @model_validator(mode="after")
    def _one_form(self) -> PodTask:
        if (self.spec is None) == (self.image is None):
            raise ValueError("a pod step needs either 'spec' (a full pod spec) or 'image' (with commands or script)")
        if self.spec is not None:
            if self.commands is not None or self.script is not None:
                raise ValueError("'commands' and 'script' go with 'image', not with a full 'spec'")
            containers = self.spec.get("containers")
            if not isinstance(containers, list) or not containers:
                raise ValueError("'spec.containers' must list at least one container")
        elif (self.commands is None) == (self.script is None):
            raise ValueError("with 'image', give exactly one of 'commands' or 'script'")
        return self

    @property
    def moves_files(self) -> bool:
        """Whether the pod gets the shared volume and transfer containers."""
        return bool(self.input_files or self.needs_download)

    @property
    def needs_download(self) -> bool:
        return bool(self.output_files or self.output_directory or self.sync_working_directory)


def unsafe_relative_path(name: str) -> str | None:
    """Why ``name`` cannot be a path below the working directory, or None when it can."""
    if not name or name in {".", "./"}:
        return "is empty"
    if "\n" in name or "\0" in name:
        return "contains a newline or NUL character"
    if name.startswith("/"):
        return "is absolute"
    if ".." in name.split("/"):
        return "contains '..'"
    return None
