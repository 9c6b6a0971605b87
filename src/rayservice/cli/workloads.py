"""The command line's verbs for what runs on a cluster, over the API server v1 paths:
``create cluster|computetemplate``, ``serve deploy|status|delete``, ``job
submit|status|logs|stop|list|delete`` and ``dashboard``.

Each verb is one or two calls of :class:`rayservice.client.RayServiceClient`, so the command
line and Python programs drive the controller the same way. Files are read here, on the
caller's machine: a Serve config's relative ``working_dir`` is made absolute against the
config file's folder, as a manifest's is, before the controller packages it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rayservice.cli import tables
from rayservice.client import RayServiceClient
from rayservice.spec.apiserver import (
    Cluster,
    ComputeTemplate,
    JobSubmissionInfo,
    RayJobSubmission,
    ServeApplicationsReply,
    parse_body,
)
from rayservice.spec.code_locations import CodeLocation, with_code_locations
from rayservice.spec.errors import RayServiceError

Connect = Callable[[], RayServiceClient]
CREATABLE = ("cluster", "computetemplate")
JOB_ACTIONS = ("submit", "status", "logs", "stop", "list", "delete")
SERVE_ACTIONS = ("deploy", "status", "delete")
_URI_SCHEME = "://"


class UnreadableFile(RayServiceError):
    """A file named on the command line could not be read or parsed."""


def read_document(path: str) -> Any:
    """A JSON or YAML file (or - for stdin) as data."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise UnreadableFile(f"cannot read {path}: {e.strerror}") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UnreadableFile(f"{path} is not JSON or YAML: {e}") from e


def with_absolute_code_folders(config_text: str, folder: Path) -> str:
    """The Serve config with each relative local ``working_dir`` and ``py_modules`` entry made
    absolute against ``folder``; text that is not one YAML mapping is sent as it is (the API
    says why)."""
    try:
        config = yaml.safe_load(config_text)
    except yaml.YAMLError:
        return config_text
    if not isinstance(config, dict):
        return config_text

    def absolute(found: CodeLocation) -> str:
        location = found.location
        if _URI_SCHEME in location or Path(location).is_absolute():
            return location
        return str((folder / location).resolve())

    anchored = with_code_locations(config, absolute)
    return yaml.safe_dump(anchored, sort_keys=False) if anchored != config else config_text


def cmd_create(args: argparse.Namespace, connect: Connect) -> int:
    body = read_document(args.filename)
    client = connect()
    if args.kind == "computetemplate":
        template = parse_body(ComputeTemplate, body)
        created = client.create_compute_template(args.namespace, template)
        print(f'computetemplate "{created.name}" created')
        return 0
    cluster = client.create_cluster(args.namespace, parse_body(Cluster, body))
    print(f'cluster "{cluster.name}" created')
    if args.wait:
        client.wait_cluster_ready(args.namespace, cluster.name, args.timeout, print)
        endpoints = client.get_cluster(args.namespace, cluster.name).service_endpoint or {}
        ports = ", ".join(f"{name} {port}" for name, port in sorted(endpoints.items()))
        print(f"Ready: ports on 127.0.0.1: {ports}")
    return 0


def cmd_serve(args: argparse.Namespace, connect: Connect) -> int:
    client = connect()
    if args.action == "deploy":
        if not args.filename:
            raise SystemExit("error: serve deploy needs -f CONFIG (a Serve config YAML file)")
        folder = Path.cwd() if args.filename == "-" else Path(args.filename).resolve().parent
        text = sys.stdin.read() if args.filename == "-" else _read_text(args.filename)
        client.deploy_serve_applications(
            args.namespace, args.cluster, with_absolute_code_folders(text, folder)
        )
        print(f"Serve config submitted to {args.cluster}")
        if args.wait:
            reply = client.wait_serve_applications_running(
                args.namespace, args.cluster, args.timeout, print
            )
            print(serve_table(reply))
    elif args.action == "status":
        print(serve_table(client.get_serve_applications(args.namespace, args.cluster)))
    else:
        client.delete_serve_applications(args.namespace, args.cluster)
        print(f"Serve shut down on {args.cluster}")
    return 0


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise UnreadableFile(f"cannot read {path}: {e.strerror}") from e


def serve_table(reply: ServeApplicationsReply) -> str:
    """Every application with its route and status, then its deployments."""
    rows = []
    for name, app in sorted((reply.applications or {}).items()):
        rows.append([name, app.status or "", app.route_prefix or "-", app.message or ""])
        for deployment, details in sorted((app.deployments or {}).items()):
            rows.append([f"  {deployment}", details.status or "", "", details.message or ""])
    if not rows:
        return "No Serve applications."
    return tables.render(["APPLICATION", "STATUS", "ROUTE", "MESSAGE"], rows)


def cmd_job(args: argparse.Namespace, connect: Connect) -> int:
    client = connect()
    if args.action == "submit":
        return _submit(args, client)
    if args.action == "list":
        print(job_table(client.list_jobs(args.namespace, args.cluster)))
        return 0
    where = (args.namespace, args.cluster, args.submission_id)
    if args.action == "status":
        print(job_table([client.get_job(*where)]))
    elif args.action == "logs":
        print(client.get_job_log(*where), end="")
    elif args.action == "stop":
        client.stop_job(*where)
        print(f"job {args.submission_id} stop requested")
    else:
        client.delete_job(*where)
        print(f"job {args.submission_id} deleted")
    return 0


def _submit(args: argparse.Namespace, client: RayServiceClient) -> int:
    before, entrypoint = _split_at_dashes(list(args.entrypoint))
    if before:
        raise SystemExit(
            f"error: {' '.join(before)}: options go before CLUSTER, the command after --"
            " (job submit [OPTIONS] CLUSTER -- CMD ARGS...)"
        )
    if not entrypoint:
        raise SystemExit("error: job submit needs a command: job submit CLUSTER -- CMD ARGS...")
    runtime_env = None
    if args.runtime_env:
        runtime_env = yaml.safe_dump(read_document(args.runtime_env))
    job = RayJobSubmission(
        entrypoint=shlex.join(entrypoint),  # Ray runs it with a shell: keep each word whole
        submission_id=args.submission_id,
        runtime_env=runtime_env,
    )
    submission_id = client.submit_job(args.namespace, args.cluster, job)
    print(f"job {submission_id} submitted")
    if not args.wait:
        return 0
    info = client.wait_job(args.namespace, args.cluster, submission_id, args.timeout, print)
    print(client.get_job_log(args.namespace, args.cluster, submission_id), end="")
    print(job_table([info]))
    return 0 if info.status == "SUCCEEDED" else 1


def _split_at_dashes(words: list[str]) -> tuple[list[str], list[str]]:
    """``(misplaced words before a --, the command)``: argparse drops a -- that comes right
    after CLUSTER, so one still here had options before it."""
    if "--" not in words:
        return [], words
    index = words.index("--")
    return words[:index], words[index + 1 :]


def job_table(jobs: list[JobSubmissionInfo]) -> str:
    if not jobs:
        return "No jobs."
    rows = [
        [job.submission_id or "", job.status or "", job.entrypoint or "", job.message or ""]
        for job in jobs
    ]
    return tables.render(["SUBMISSION ID", "STATUS", "ENTRYPOINT", "MESSAGE"], rows)


def cmd_dashboard(args: argparse.Namespace, connect: Connect) -> int:
    access = connect().dashboard(args.namespace, args.name)
    if args.output == "json":
        print(json.dumps(access, indent=2))
        return 0
    print(f"Dashboard of {access['cluster']}: {access['url']}")
    if access.get("via"):
        print(f"(run `{access['via']}` first: the Kubernetes API server's proxy leads there)")
    if access["token"]:
        print("Ray's login asks for the cluster's authentication token; paste this one:")
        print(access["token"])
    return 0


def add_verbs(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    connect: Connect,
    default_timeout: float,
) -> None:
    """The parsers of this module's verbs; each runs with a client from ``connect``."""
    create = verbs.add_parser(
        "create", help="create a cluster or compute template from a v1 JSON/YAML body"
    )
    create.add_argument("kind", choices=CREATABLE)
    create.add_argument("-f", "--filename", required=True, help="body file, or - for stdin")
    create.add_argument("-n", "--namespace", default="default")
    create.add_argument("--wait", action="store_true", help="wait until the cluster is ready")
    create.add_argument("--timeout", type=float, default=default_timeout)
    create.set_defaults(func=lambda args: cmd_create(args, connect))

    serve = verbs.add_parser("serve", help="Serve applications on a cluster: deploy|status|delete")
    serve.add_argument("action", choices=SERVE_ACTIONS)
    serve.add_argument("cluster")
    serve.add_argument("-f", "--filename", help="Serve config YAML (deploy)")
    serve.add_argument("-n", "--namespace", default="default")
    serve.add_argument("--wait", action="store_true", help="wait until every app is RUNNING")
    serve.add_argument("--timeout", type=float, default=default_timeout)
    serve.set_defaults(func=lambda args: cmd_serve(args, connect))

    job = verbs.add_parser("job", help="Ray jobs on a cluster: submit|status|logs|stop|list|delete")
    actions = job.add_subparsers(dest="action", required=True)
    submit = actions.add_parser(
        "submit", help="submit: job submit [OPTIONS] CLUSTER -- CMD ARGS..."
    )
    submit.add_argument("cluster")
    submit.add_argument(
        "entrypoint", nargs=argparse.REMAINDER, help="the command, after --: -- CMD ARGS..."
    )
    submit.add_argument("--submission-id", help="the job's id (Ray makes one when left out)")
    submit.add_argument("--runtime-env", help="a runtime_env YAML file")
    submit.add_argument("--wait", action="store_true", help="wait for the job to end")
    submit.add_argument("--timeout", type=float, default=default_timeout)
    listing = actions.add_parser("list", help="the jobs of a cluster")
    listing.add_argument("cluster")
    for action in JOB_ACTIONS:
        if action in ("submit", "list"):
            continue
        one = actions.add_parser(action, help=f"{action} one job")
        one.add_argument("cluster")
        one.add_argument("submission_id")
    for parser in actions.choices.values():
        parser.add_argument("-n", "--namespace", default="default")
    job.set_defaults(func=lambda args: cmd_job(args, connect))

    dashboard = verbs.add_parser(
        "dashboard", help="the Ray dashboard URL of a rayservice or raycluster, and its token"
    )
    dashboard.add_argument("name")
    dashboard.add_argument("-n", "--namespace", default="default")
    dashboard.add_argument("-o", "--output", choices=["json"])
    dashboard.set_defaults(func=lambda args: cmd_dashboard(args, connect))
