"""Every EKS cluster of the given accounts and regions (boto3 ``list_clusters`` + ``describe_cluster``),
each with its endpoint, CA and the eks auth provider filled in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fleet.auth import EksAuth
from fleet.inventory.models import Cluster, ConnectionSpec, DefaultsSpec, EksAccount, EksSource
from fleet.labels import valid_label_key, valid_label_value

if TYPE_CHECKING:  # boto3 is imported when an inventory lists EKS clusters, not by every command that reads one
    import boto3


def _session(source: EksSource, account: EksAccount) -> boto3.Session:
    import boto3

    base = boto3.Session(profile_name=account.profile)
    if account.role_arn is None:
        return base
    sts = base.client("sts", endpoint_url=source.sts_endpoint or source.endpoint_url,
                      region_name=source.regions[0])
    creds = sts.assume_role(RoleArn=account.role_arn, RoleSessionName="fleet-discovery")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _labels(tags: dict[str, str]) -> dict[str, str]:
    """Tags that are valid label keys and values (the others cannot be selected on)."""
    return {k: v for k, v in tags.items() if valid_label_key(k) and valid_label_value(v)}


def describe_eks_clusters(source: EksSource) -> list[dict[str, Any]]:
    """``describe_cluster`` of every cluster (blocking), each with the account it was found through."""
    found: list[dict[str, Any]] = []
    for account in source.accounts:
        session = _session(source, account)
        for region in source.regions:
            eks = session.client("eks", region_name=region, endpoint_url=source.endpoint_url)
            for page in eks.get_paginator("list_clusters").paginate():
                for name in page["clusters"]:
                    cluster = eks.describe_cluster(name=name)["cluster"]
                    found.append({"cluster": cluster, "region": region, "roleArn": account.role_arn})
    return found


def eks_entries(source: EksSource, described: list[dict[str, Any]], defaults: DefaultsSpec,
                origin: str) -> list[Cluster]:
    """Cluster entries for described EKS clusters."""
    entries = []
    for item in described:
        eks = item["cluster"]
        tags: dict[str, str] = eks.get("tags") or {}
        entries.append(Cluster(
            name=eks["name"],
            tenant=source.tenant or tags.get("tenant") or defaults.tenant,
            region=item["region"],
            labels={**defaults.labels, **_labels(tags), **source.labels},
            connection=ConnectionSpec.model_validate({
                "masterUrl": eks["endpoint"],
                "caCertData": (eks.get("certificateAuthority") or {}).get("data"),
            }),
            auth=EksAuth.model_validate({
                "type": "eks",
                "clusterName": eks["name"],
                "region": item["region"],
                "roleArn": item["roleArn"],
                "stsEndpoint": source.sts_endpoint,
            }),
            origin=f"{origin}: {eks.get('arn', eks['name'])}",
        ))
    return entries
