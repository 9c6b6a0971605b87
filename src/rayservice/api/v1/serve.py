"""v1 Serve applications on a cluster: deploy a Serve config declaratively, read every
application's status, shut Serve down; through Ray's Serve REST API on the cluster's dashboard.

The config is checked with Ray's own schema before it goes out (problems carry their field path
inside ``configyaml``); local ``working_dir``s are packaged content-addressed as for manifests
(a changed app gets a new URI, so Ray does not run a cached copy), and only for a caller on this
machine; for a cluster on Kubernetes the Serve client ships them, and another file of this machine
is refused. The proxies must listen where the cluster's fronts expect them, so ``http_options``
are the backend's, as for a RayService.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, Request

from rayservice.api.auth import caller_is_local
from rayservice.api.packaging import files_pods_cannot_read, resolve_working_dirs
from rayservice.api.v1.context import V1Context, running_cluster
from rayservice.planner.readiness import deployable_config
from rayservice.spec.apiserver import (
    REQUEST_BODY,
    ServeApplicationsReply,
    SubmissionYaml,
    check,
    parse_body,
    submission_yaml_problems,
    to_wire,
)
from rayservice.spec.errors import InvalidSpec
from rayservice.spec.serve_config import parse_serve_config

CONFIG_FIELD = "configyaml"
_MANIFEST_FIELD = "spec.serveConfigV2"  # where packaging locates a manifest's Serve config


def _packaged(
    config: dict[str, Any], packages: Path, may_read_local_paths: bool, on_this_machine: bool
) -> dict[str, Any]:
    """``config`` with its local folders packaged (and, for clusters elsewhere, no other file
    of this machine); problems located inside ``configyaml`` (packaging names the field of a
    manifest's Serve config)."""
    try:
        packaged = resolve_working_dirs(
            config, Path.cwd(), packages, REQUEST_BODY, may_read_local_paths=may_read_local_paths
        )
        if not on_this_machine and (
            problems := files_pods_cannot_read(packaged, packages, REQUEST_BODY)
        ):
            raise InvalidSpec(problems)
        return packaged
    except InvalidSpec as error:
        problems = [
            dataclasses.replace(p, field=CONFIG_FIELD + p.field.removeprefix(_MANIFEST_FIELD))
            if p.field.startswith(_MANIFEST_FIELD)
            else p
            for p in error.problems
        ]
        raise InvalidSpec(problems) from error


def _yaml_mapping(text: str) -> dict[str, Any] | None:
    """The config as written when it is one YAML mapping; else None (validation says why)."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return loaded if isinstance(loaded, dict) else None


def router(ctx: V1Context) -> APIRouter:
    api = APIRouter(prefix="/apis/v1", tags=["serve applications"])

    @api.post("/namespaces/{namespace}/serveapplication/{cluster}")
    def submit_serve_applications(
        namespace: str, cluster: str, request: Request, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        submission = parse_body(SubmissionYaml, body)
        check(submission_yaml_problems(submission))
        text = submission.configyaml
        written = _yaml_mapping(text)
        if written is not None:  # local folders become package URIs before Ray's schema looks
            on_this_machine = ctx.exposure.on_this_machine
            packaged = _packaged(written, ctx.packages, caller_is_local(request), on_this_machine)
            text = yaml.safe_dump(packaged, sort_keys=False)
        config = parse_serve_config(text, REQUEST_BODY, CONFIG_FIELD)
        target = running_cluster(ctx, namespace, cluster)
        head = target.head
        assert head is not None  # a ready cluster has its head
        ctx.serve.deploy(
            target.dashboard_url,
            target.auth_token,
            deployable_config(config, head.proxy_port, target.proxy_host),
        )
        return {}

    @api.get("/namespaces/{namespace}/serveapplication/{cluster}")
    def get_serve_applications(namespace: str, cluster: str) -> dict[str, Any]:
        target = running_cluster(ctx, namespace, cluster)
        details = ctx.serve.details(target.dashboard_url, target.auth_token)
        return to_wire(ServeApplicationsReply.model_validate(details))

    @api.delete("/namespaces/{namespace}/serveapplication/{cluster}")
    def delete_serve_applications(namespace: str, cluster: str) -> dict[str, Any]:
        target = running_cluster(ctx, namespace, cluster)
        ctx.serve.shutdown(target.dashboard_url, target.auth_token)
        return {}

    return api
