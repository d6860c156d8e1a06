"""Building the pod from a step: each row shows the options and the merged pod spec they give."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from pydantic import ValidationError

from fleet.errors import InputError
from fleet.pods.identity import PodIdentity, label_value, pod_name
from fleet.pods.models import InputFile, PodTask
from fleet.pods.render import pod_task
from fleet.pods.spec import build_pod, build_pod_spec, name_for, pull_secret_manifest

FILES_VOLUME = {"name": "fleet-files", "emptyDir": {"medium": "Memory"}}
FILES_MOUNT = {"name": "fleet-files", "mountPath": "/fleet"}
INJECTED_ENV = [
    {"name": "WORKING_DIR", "value": "/fleet/working-dir"},
    {"name": "OUTPUT_DIR", "value": "/fleet/working-dir/output"},
]
INIT_GATE = (
    "mkdir -p /fleet/working-dir/output && chmod 0777 /fleet/working-dir /fleet/working-dir/output"
    " && while [ ! -e /fleet/ready ]; do sleep 0.1; done"
)
SIDECAR_WAIT = "while [ ! -e /fleet/ended ]; do sleep 0.1; done"


def spec_of(options):
    return build_pod_spec(pod_task(options, {}))


SPEC_CASES = [
    pytest.param(
        {"image": "alpine", "commands": ["echo hi", "echo bye"]},
        {
            "restartPolicy": "Never",
            "containers": [
                {"name": "main", "image": "alpine", "command": ["/bin/sh", "-c", "set -e\necho hi\necho bye"]}
            ],
        },
        id="shorthand commands: main container, sh -c with set -e",
    ),
    pytest.param(
        {"image": "python:3", "script": "print(1)", "interpreter": ["python3", "-c"]},
        {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "python:3", "command": ["python3", "-c", "print(1)"]}],
        },
        id="shorthand script with an interpreter",
    ),
    pytest.param(
        {
            "image": "alpine",
            "commands": ["true"],
            "pullPolicy": "IF_NOT_PRESENT",
            "resources": {"request": {"cpu": "500m", "memory": "128Mi"}, "limit": {"nvidia.com/gpu": 1}},
            "nodeSelector": {"gpu": "yes"},
            "serviceAccountName": "runner",
            "containerSpec": {"imagePullPolicy": "Always", "env": [{"name": "X", "value": "1"}]},
        },
        {
            "restartPolicy": "Never",
            "nodeSelector": {"gpu": "yes"},
            "serviceAccountName": "runner",
            "containers": [
                {
                    "name": "main",
                    "image": "alpine",
                    "command": ["/bin/sh", "-c", "set -e\ntrue"],
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": "X", "value": "1"}],
                    "resources": {"requests": {"cpu": "500m", "memory": "128Mi"}, "limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
        id="properties: pullPolicy, resources (GPU), nodeSelector, serviceAccountName; they win over containerSpec",
    ),
    pytest.param(
        {
            "image": "alpine",
            "commands": ["cp data.txt out.txt"],
            "inputFiles": {"data.txt": "hello"},
            "outputFiles": ["out.txt"],
            "containerSpec": {"env": [{"name": "WORKING_DIR", "value": "/mine"}, {"name": "MINE", "value": "1"}]},
        },
        {
            "restartPolicy": "Never",
            "volumes": [FILES_VOLUME],
            "initContainers": [
                {
                    "name": "fleet-init",
                    "image": "busybox",
                    "volumeMounts": [FILES_MOUNT],
                    "command": ["sh", "-c", INIT_GATE],
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "alpine",
                    "command": ["/bin/sh", "-c", "set -e\ncp data.txt out.txt"],
                    "workingDir": "/fleet/working-dir",
                    "env": [INJECTED_ENV[0], {"name": "MINE", "value": "1"}, INJECTED_ENV[1]],
                    "volumeMounts": [FILES_MOUNT],
                },
                {
                    "name": "fleet-sidecar",
                    "image": "busybox",
                    "volumeMounts": [FILES_MOUNT],
                    "command": ["sh", "-c", SIDECAR_WAIT],
                },
            ],
        },
        id="files move: volume, gate init container, sidecar; injected WORKING_DIR wins over containerSpec",
    ),
    pytest.param(
        {"image": "alpine", "commands": ["true"], "outputFiles": ["*.json"]},
        {
            "restartPolicy": "Never",
            "volumes": [FILES_VOLUME],
            "initContainers": [
                {
                    "name": "fleet-init",
                    "image": "busybox",
                    "volumeMounts": [FILES_MOUNT],
                    "command": ["sh", "-c", INIT_GATE.split(" && while")[0]],
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "alpine",
                    "command": ["/bin/sh", "-c", "set -e\ntrue"],
                    "workingDir": "/fleet/working-dir",
                    "env": INJECTED_ENV,
                    "volumeMounts": [FILES_MOUNT],
                },
                {
                    "name": "fleet-sidecar",
                    "image": "busybox",
                    "volumeMounts": [FILES_MOUNT],
                    "command": ["sh", "-c", SIDECAR_WAIT],
                },
            ],
        },
        id="output files only: the init container just creates the working directory",
    ),
    pytest.param(
        {
            "image": "alpine",
            "commands": ["true"],
            "podSpec": {
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
                "restartPolicy": "Always",
                "containers": [
                    {"name": "main", "image": "ignored", "ports": [{"name": "http", "containerPort": 80}]},
                    {"name": "sidecar", "image": "busybox", "command": ["sleep", "5"]},
                ],
            },
        },
        {
            "restartPolicy": "Never",
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "containers": [
                {
                    "name": "main",
                    "image": "alpine",
                    "command": ["/bin/sh", "-c", "set -e\ntrue"],
                    "ports": [{"name": "http", "containerPort": 80}],
                },
                {"name": "sidecar", "image": "busybox", "command": ["sleep", "5"]},
            ],
        },
        id="podSpec: its main gives defaults to fleet's main, other containers are sidecars",
    ),
    pytest.param(
        {
            "image": "alpine",
            "commands": ["true"],
            "inputFiles": {"a": "x"},
            "containerDefaultSpec": {
                "securityContext": {"readOnlyRootFilesystem": True},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            },
            "fileSidecar": {"image": "my/busybox", "resources": {"limits": {"cpu": "300m"}}},
            "fileSideCarSpec": {"securityContext": {"runAsUser": 65534}},
            "podSpec": {"volumes": [{"name": "tmp", "emptyDir": {}}]},
        },
        {
            "restartPolicy": "Never",
            "volumes": [{"name": "tmp", "emptyDir": {}}, FILES_VOLUME],
            "initContainers": [
                {
                    "name": "fleet-init",
                    "image": "my/busybox",
                    "resources": {"limits": {"cpu": "300m"}},
                    "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": 65534},
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, FILES_MOUNT],
                    "command": ["sh", "-c", INIT_GATE],
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "alpine",
                    "command": ["/bin/sh", "-c", "set -e\ntrue"],
                    "workingDir": "/fleet/working-dir",
                    "securityContext": {"readOnlyRootFilesystem": True},
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, FILES_MOUNT],
                    "env": INJECTED_ENV,
                }
            ],
        },
        id="containerDefaultSpec reaches every container; fileSidecar and fileSideCarSpec the transfer ones",
    ),
    pytest.param(
        {
            "image": "alpine",
            "commands": ["true"],
            "outputFiles": ["x"],
            "containerDefaultSpec": {"securityContext": {"privileged": False}},
            "fileSidecar": {"defaultSpec": {"securityContext": {"runAsNonRoot": True}}},
        },
        {
            "restartPolicy": "Never",
            "volumes": [FILES_VOLUME],
            "initContainers": [
                {
                    "name": "fleet-init",
                    "image": "busybox",
                    "securityContext": {"runAsNonRoot": True},
                    "volumeMounts": [FILES_MOUNT],
                    "command": ["sh", "-c", INIT_GATE.split(" && while")[0]],
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "alpine",
                    "command": ["/bin/sh", "-c", "set -e\ntrue"],
                    "workingDir": "/fleet/working-dir",
                    "securityContext": {"privileged": False},
                    "env": INJECTED_ENV,
                    "volumeMounts": [FILES_MOUNT],
                },
                {
                    "name": "fleet-sidecar",
                    "image": "busybox",
                    "securityContext": {"runAsNonRoot": True},
                    "volumeMounts": [FILES_MOUNT],
                    "command": ["sh", "-c", SIDECAR_WAIT],
                },
            ],
        },
        id="fileSidecar.defaultSpec replaces containerDefaultSpec for the transfer containers",
    ),
    pytest.param(
        {
            "spec": {
                "containers": [
                    {
                        "name": "unittest",
                        "image": "centos",
                        "command": ["cp", "{{workingDir}}/data.txt", "{{ workingDir }}/out.txt"],
                    }
                ],
                "restartPolicy": "OnFailure",
            },
            "inputFiles": {"data.txt": "x"},
            "containerSpec": {"env": [{"name": "E", "value": "1"}]},
        },
        {
            "restartPolicy": "OnFailure",
            "volumes": [FILES_VOLUME],
            "initContainers": [
                {
                    "name": "fleet-init",
                    "image": "busybox",
                    "volumeMounts": [FILES_MOUNT],
                    "command": ["sh", "-c", INIT_GATE],
                }
            ],
            "containers": [
                {
                    "name": "unittest",
                    "image": "centos",
                    "command": ["cp", "/fleet/working-dir/data.txt", "/fleet/working-dir/out.txt"],
                    "env": [{"name": "E", "value": "1"}, *INJECTED_ENV],
                    "volumeMounts": [FILES_MOUNT],
                }
            ],
        },
        id="full spec form: the first container is main, templates rendered, restartPolicy kept",
    ),
]


@pytest.mark.parametrize(("options", "expected"), SPEC_CASES)
def test_pod_spec(options, expected):
    assert spec_of(options) == expected


def test_seed_restricted_environment_example():
    """Seed 003: containerDefaultSpec with securityContext, readOnlyRootFilesystem and a tmp volume."""
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    spec = spec_of(
        {
            "containerDefaultSpec": {
                "securityContext": security,
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            },
            "spec": {
                "volumes": [{"name": "tmp", "emptyDir": {}}],
                "containers": [
                    {
                        "name": "main",
                        "image": "centos",
                        "command": ["cp", "{{workingDir}}/data.txt", "{{workingDir}}/out.txt"],
                    }
                ],
                "restartPolicy": "Never",
            },
            "waitUntilRunning": "PT3M",
            "inputFiles": {"data.txt": "data"},
            "outputFiles": ["out.txt"],
        }
    )
    every = spec["initContainers"] + spec["containers"]
    assert [c["name"] for c in every] == ["fleet-init", "main", "fleet-sidecar"]
    for container in every:
        assert container["securityContext"] == security
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}, FILES_MOUNT]


def test_defaults_follow_the_seeds():
    task = PodTask.model_validate({"image": "alpine", "commands": ["true"]})
    assert task.namespace == "default"
    assert task.wait_until_running == timedelta(minutes=10)
    assert task.wait_until_completion == timedelta(hours=1)
    assert task.wait_for_logs == timedelta(seconds=30)
    assert task.delete is True
    assert task.resume is True
    assert task.file_sidecar.image == "busybox"
    assert task.pull_policy is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"commands": ["x"]}, "either 'spec'"),
        ({"image": "a", "spec": {"containers": [{"name": "a"}]}}, "either 'spec'"),
        ({"image": "a"}, "exactly one of 'commands' or 'script'"),
        ({"spec": {"containers": []}}, "at least one container"),
        ({"image": "a", "commands": ["x"], "inputFiles": {"../x": "a"}}, "contains '..'"),
        ({"image": "a", "commands": ["x"], "inputFiles": {"/etc/x": "a"}}, "is absolute"),
        ({"image": "a", "commands": ["x"], "waitUntilRunning": "ten minutes"}, "waitUntilRunning"),
        ({"image": "a", "commands": ["x"], "unknown": 1}, "unknown"),
    ],
)
def test_invalid_options(options, message):
    with pytest.raises(ValidationError, match=message):
        PodTask.model_validate(options)


def test_workingdir_outside_file_steps_is_a_clear_input_error():
    with pytest.raises(InputError, match=r"commands\[0\].*workingDir and outputDir exist when the step moves files"):
        pod_task({"image": "a", "commands": ["cat {{ workingDir }}/x"]}, {})


@pytest.mark.parametrize(
    ("options", "implied"),
    [
        ({"commands": ["echo x > {{ outputDir }}/a.txt"]}, True),
        ({"script": "{% set d = outputDir %}echo > {{ d }}/a"}, True),
        ({"commands": ["echo outputDir"]}, False),
        ({"commands": ["echo {{ outputDirectory }}"]}, False),
        ({"commands": ["true"], "containerSpec": {"env": [{"name": "D", "value": "{{outputDir}}"}]}}, True),
    ],
)
def test_a_template_using_output_dir_turns_the_output_directory_on(options, implied):
    task = pod_task({"image": "a", **options}, {"outputDirectory": "x"})
    assert task.output_directory is implied
    if implied:
        spec = build_pod_spec(task)
        assert [c["name"] for c in spec["containers"]] == ["main", "fleet-sidecar"]


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        (
            "{{ ref }}",
            "artifact://run/sim-0/export/1/out.txt",
            InputFile(artifact="artifact://run/sim-0/export/1/out.txt"),
        ),
        ("{{ ref }}", "plain text", InputFile(content="plain text")),
        ("see {{ ref }}", "artifact://a/b", InputFile(content="see artifact://a/b")),
        ("artifact://a/b", None, InputFile(artifact="artifact://a/b")),
        ("{{ ref }}", "artifact://a b", InputFile(content="artifact://a b")),
    ],
)
def test_an_input_template_naming_an_earlier_output_file_is_that_file(template, value, expected):
    rendered = pod_task({"image": "a", "commands": ["true"], "inputFiles": {"in.txt": template}}, {"ref": value})
    assert rendered.input_files["in.txt"] == expected


def test_an_input_template_naming_a_bad_artifact_is_an_input_error():
    with pytest.raises(InputError, match=r"inputFiles\.in\.txt") as e:
        pod_task(
            {"image": "a", "commands": ["true"], "inputFiles": {"in.txt": "{{ ref }}"}},
            {"ref": "artifact://../etc/passwd"},
        )
    assert "artifact" in str(e.value)


def test_pod_metadata_labels_and_annotations():
    identity = PodIdentity(run_id="run-1", cluster="sim-0", step_id="Smoke Test", attempt=2)
    task = PodTask.model_validate(
        {
            "image": "a",
            "commands": ["x"],
            "namespace": "jobs",
            "labels": {"team": "runner", "tier": "batch", "fleet.dev/run-id": "not-this"},
            "metadata": {"labels": {"team": "a"}, "name": "ignored"},
        }
    )
    pod = build_pod(task, name="smoke-test-abc123", identity=identity)
    assert pod["metadata"]["name"] == "smoke-test-abc123"
    assert pod["metadata"]["namespace"] == "jobs"
    assert pod["metadata"]["labels"] == {
        "team": "a",
        "tier": "batch",
        "app.kubernetes.io/managed-by": "fleet",
        "fleet.dev/run-id": "run-1",
        "fleet.dev/cluster": "sim-0",
        "fleet.dev/step-id": label_value("Smoke Test"),
        "fleet.dev/attempt": "2",
    }


@pytest.mark.parametrize(
    "text",
    ["ok", "Smoke Test", "x" * 80, "-lead-and-trail-", "ünïcode/step", "a..b", "___"],
)
def test_label_values_are_valid_and_distinct(text):
    value = label_value(text)
    assert len(value) <= 63
    assert value[0].isalnum()
    assert value[-1].isalnum()
    assert all(c.isalnum() or c in "._-" for c in value)
    assert value == text or label_value(text + "!") != value


@pytest.mark.parametrize("step_id", ["Smoke Test", "x" * 100, "!!!", "deploy.v2/canary"])
def test_pod_names_are_readable_dns_names(step_id):
    name = pod_name(step_id)
    assert len(name) <= 63
    assert name == name.lower()
    assert name[0].isalnum()
    assert name[-1].isalnum()
    assert all(c.isalnum() or c == "-" for c in name)
    assert pod_name(step_id) != name


@pytest.mark.parametrize(
    ("metadata", "pattern"),
    [
        ({"name": "exact-name"}, r"exact-name"),
        ({"generateName": "export-"}, r"export-[a-z0-9]{6}"),
        ({"generateName": "Nightly Export"}, r"nightly-export-[a-z0-9]{6}"),
        ({"labels": {"a": "b"}}, r"smoke-test-[a-z0-9]{6}"),
        (None, r"smoke-test-[a-z0-9]{6}"),
    ],
)
def test_pod_name_given_generated_from_generate_name_or_the_step(metadata, pattern):
    task = PodTask.model_validate({"image": "a", "commands": ["true"], "metadata": metadata})
    name = name_for(task, "Smoke Test")
    assert re.fullmatch(pattern, name), name
    manifest = build_pod(task, name=name, identity=PodIdentity("r", "c", "Smoke Test"))
    assert manifest["metadata"]["name"] == name
    assert "generateName" not in manifest["metadata"]


def test_pull_secret_is_dockerconfigjson_and_referenced():
    task = PodTask.model_validate(
        {
            "image": "a",
            "commands": ["x"],
            "credentials": {"registry": "r.io", "username": "u", "password": "s3cr3t-value"},
        }
    )
    assert task.credentials is not None
    assert "s3cr3t-value" not in repr(task.credentials)
    secret = pull_secret_manifest("pod-pull", "default", task.credentials, {"a": "b"})
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert build_pod_spec(task, "pod-pull")["imagePullSecrets"] == [{"name": "pod-pull"}]
