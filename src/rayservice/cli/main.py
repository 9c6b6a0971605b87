"""The ``rayservice`` command line: kubectl-like verbs over the controller's REST API.

rayservice start | controller [--host HOST] [--token-file PATH] [--backend local|kubernetes
    [--kubeconfig FILE] [--context NAME]] | stop
rayservice apply -f FILE [--wait] [--timeout S] | apply -f FILE --dry-run
rayservice diff -f FILE
rayservice render -f FILE [--backend kubernetes]
rayservice get rayservice|raycluster|pods|services|secrets|configmaps [NAME] [-o wide|json|yaml]
rayservice describe rayservice|secret|configmap NAME
rayservice delete -f FILE | delete rayservice|raycluster|secret|configmap NAME
rayservice logs NAME [--pod POD] [--tail N]  (a rayservice or raycluster)
rayservice rollout status|history|pause|resume|promote|undo NAME
rayservice create cluster|computetemplate -f FILE [--wait]
rayservice serve deploy|status|delete CLUSTER [-f CONFIG] [--wait]
rayservice job submit CLUSTER [--wait] -- CMD ... | job list CLUSTER
rayservice job status|logs|stop|delete CLUSTER SUBMISSION_ID
rayservice dashboard NAME
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rayservice.api.credentials import client_token, listen_token
from rayservice.api.settings import API_HOST, api_port, api_url, home_dir, local_api_url, pid_file
from rayservice.cli import config_tables, daemon, describe_pages, render, rollout, tables, workloads
from rayservice.cli.change_report import change_report
from rayservice.cli.waiting import summarize, summarize_cluster, wait_for
from rayservice.client import NotFound, RayServiceClient
from rayservice.client.manifests import plural_of
from rayservice.host.addresses import AccessSettingsError
from rayservice.host.ports import address_is_local
from rayservice.planner.change import ChangeKind
from rayservice.spec.config_objects import CONFIG_PLURALS, is_config_object
from rayservice.spec.errors import InvalidSpec, RayServiceError, SpecProblem
from rayservice.spec.foreign_objects import RAY_API_GROUP, not_run_here, object_label
from rayservice.spec.serve_config import load_yaml_documents
from rayservice.spec.service_exposure import ExposureSettings
from rayservice.spec.vocabulary import ALL_INTERFACES, STANDALONE_ROLE, Backend

Rows = Callable[[list[dict[str, Any]], bool], tuple[list[str], list[list[str]]]]
KINDS: dict[str, tuple[str, Rows]] = {}
for aliases, plural, rows in (
    (("rayservice", "rayservices", "rsvc"), "rayservices", tables.rayservice_rows),
    (("raycluster", "rayclusters", "rcluster"), "rayclusters", tables.raycluster_rows),
    (("pod", "pods", "po"), "pods", tables.pod_rows),
    (("service", "services", "svc"), "services", tables.service_rows),
    (("secret", "secrets"), "secrets", config_tables.secret_rows),
    (("configmap", "configmaps", "cm"), "configmaps", config_tables.config_map_rows),
):
    for alias in aliases:
        KINDS[alias] = (plural, rows)
# longer than the default pendingClusterTimeoutSeconds (600), so --wait reports a given-up
# upgrade with its reason rather than its own timeout
DEFAULT_TIMEOUT = 900.0
DRY_RUN_TRAILER = "(dry run: nothing was changed)"
DELETABLE = ("rayservices", "rayclusters", *CONFIG_PLURALS.values())
DESCRIBE_PAGES = {
    "pods": describe_pages.describe_pod,
    "services": describe_pages.describe_service,
    "rayclusters": describe_pages.describe_raycluster,
}
DESCRIBABLE = ("rayservices", *DESCRIBE_PAGES, *CONFIG_PLURALS.values())
BACKEND_ENV = "RAYSERVICE_BACKEND"
CONTEXT_ENV = "RAYSERVICE_KUBE_CONTEXT"
# Like `kubectl diff`: 1 means "there are differences", so diff reports its errors with 2.
ERROR_EXIT_CODES = {"diff": 2}


class UnreadableInput(RayServiceError):
    """The manifest file (or stdin) could not be read."""


def _client() -> RayServiceClient:
    return RayServiceClient(api_url(), token=client_token(os.environ))


def _read_documents(path: str, verb: str) -> list[dict[str, Any]]:
    """The objects of the file (``-``: stdin); like kubectl, a file without any is an error,
    and so is one object defined twice (which definition would win?), before any is sent."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise UnreadableInput(f"cannot read {path}: {e.strerror}") from e
    documents = [d for d in load_yaml_documents(text, path, "<yaml>") if d is not None]
    if not documents:
        raise UnreadableInput(f"no objects passed to {verb} (in {path})")
    _refuse_unaddressable_or_repeated(documents, path)
    ours = []
    for document in documents:
        skipped = not_run_here(document)
        if skipped is None:
            ours.append(document)
        else:
            print(f"{object_label(document)} skipped: {skipped}")
    if not ours:
        raise UnreadableInput(
            f"nothing to {verb} in {path}: no {RAY_API_GROUP} object, Secret or ConfigMap"
        )
    return ours


def _refuse_unaddressable_or_repeated(documents: list[Any], path: str) -> None:
    """Every object must have a name (its request path is built from it) and come once;
    everything else is for the controller to check."""
    first: dict[tuple[str, str, str], str] = {}
    problems = []
    for number, document in enumerate(documents, start=1):
        source = path if len(documents) == 1 else f"{path} (document {number})"
        if not_run_here(document) is not None:
            continue  # skipped, whatever it holds
        meta = document.get("metadata") if isinstance(document, dict) else None
        if not isinstance(document, dict):
            found = type(document).__name__
            hint = "a mapping with apiVersion, kind, metadata and spec"
            problems.append(
                SpecProblem(source, "<document>", f"must be a mapping, not {found}", hint)
            )
            continue
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            field = "metadata.name" if isinstance(meta, dict) else "metadata"
            hint = "a mapping with at least a name" if field == "metadata" else "the object's name"
            problems.append(SpecProblem(source, field, "is required", hint))
            continue
        kind, namespace = str(document.get("kind")), str(meta.get("namespace") or "default")
        identity = (kind, namespace, meta["name"])
        if identity in first:
            message = f"{kind} {namespace}/{meta['name']} is also defined in {first[identity]}"
            problems.append(
                SpecProblem(source, "metadata.name", message, "one definition per object")
            )
        else:
            first[identity] = source
    if problems:
        raise InvalidSpec(problems)


def _base_dir(path: str) -> str:
    """Where relative working_dirs of the manifest resolve: its folder, or here for stdin."""
    return str(Path(path).resolve().parent if path != "-" else Path.cwd())


def _in_apply_order(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Secrets and ConfigMaps first, then the ray.io objects that may take values from them;
    otherwise in the file's order."""
    return sorted(documents, key=lambda document: not is_config_object(document))


def _alongside(document: dict[str, Any], documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Secrets and ConfigMaps applied before ``document`` (a ray.io object): its dry run
    counts them as stored."""
    return [] if is_config_object(document) else [d for d in documents if is_config_object(d)]


def _print_dry_runs(path: str, verb: str) -> bool:
    """Print what applying each object of the file would do; True when anything would change."""
    client = _client()
    changes = False
    documents = _in_apply_order(_read_documents(path, verb))
    for document in documents:
        alongside = _alongside(document, documents)
        change = client.dry_run(document, path, _base_dir(path), alongside)
        print(change_report(document["metadata"]["name"], change))
        changes = changes or change["kind"] != ChangeKind.NO_OP
    return changes


def _with_autoscaler_state(
    client: RayServiceClient, namespace: str, cluster: dict[str, Any]
) -> dict[str, Any]:
    """The cluster view with its autoscaler's last request and what ``ray status`` prints."""
    state = client.autoscaling_state(namespace, cluster["metadata"]["name"], ray_status=True)
    autoscaler = {**cluster["status"]["autoscaler"], **state.model_dump(by_alias=True)}
    return {**cluster, "status": {**cluster["status"], "autoscaler": autoscaler}}


def cmd_diff(args: argparse.Namespace) -> int:
    return 1 if _print_dry_runs(args.filename, "diff") else 0


def cmd_apply(args: argparse.Namespace) -> int:
    if args.dry_run:
        _print_dry_runs(args.filename, "apply")
        print(DRY_RUN_TRAILER)
        return 0
    client = _client()
    base_dir = _base_dir(args.filename)
    documents = _in_apply_order(_read_documents(args.filename, "apply"))
    if len(documents) > 1:  # every object is checked before any is applied
        for document in documents:
            client.dry_run(document, args.filename, base_dir, _alongside(document, documents))
    status = 0
    for document in documents:
        obj, warnings = client.apply(document, args.filename, base_dir)
        for warning in warnings:
            print(f"Warning: {warning}", file=sys.stderr)
        meta = obj["metadata"]
        plural = plural_of(document)
        if plural in CONFIG_PLURALS.values():
            print(f"{plural[:-1]}/{meta['name']} applied")
            continue
        print(f"{plural[:-1]}.ray.io/{meta['name']} applied (generation {meta['generation']})")
        if args.wait:
            namespace, name = meta["namespace"], meta["name"]
            is_cluster = plural == "rayclusters"
            get = client.get_raycluster if is_cluster else client.get_service

            def fetch(
                namespace: str = namespace,
                name: str = name,
                get: Callable[[str, str], dict[str, Any]] = get,
            ) -> dict[str, Any]:
                return get(namespace, name)

            outcome = wait_for(
                fetch,
                meta["generation"],
                args.timeout,
                print,
                summarize_cluster if is_cluster else summarize,
            )
            print(outcome.message, file=sys.stdout if outcome.ok else sys.stderr)
            status = status or (0 if outcome.ok else 1)
    return status


def _print_objects(objects: list[dict[str, Any]], single: bool, output: str | None, kind: str,
                   rows: Rows) -> None:  # fmt: skip
    if output in ("json", "yaml"):
        objects = [config_tables.without_secret_values(o) for o in objects]
        doc: Any = objects[0] if single else {"apiVersion": "v1", "kind": "List", "items": objects}
        text = (
            json.dumps(doc, indent=2) if output == "json" else yaml.safe_dump(doc, sort_keys=False)
        )
        print(text.rstrip())
        return
    if not objects:
        print(f"No {kind} found.", file=sys.stderr)
        return
    headers, body = rows(objects, output == "wide")
    print(tables.render(headers, body))


def cmd_get(args: argparse.Namespace) -> int:
    if args.kind not in KINDS:
        valid = ", ".join(sorted(KINDS))
        raise SystemExit(f'error: unknown resource type "{args.kind}" (valid: {valid})')
    plural, rows = KINDS[args.kind]
    namespace = None if args.all_namespaces else args.namespace
    objects = _client().list_objects(plural, namespace)
    if args.name:
        objects = [o for o in objects if o["metadata"]["name"] == args.name]
        if not objects:
            raise SystemExit(f'error: {plural} "{args.name}" not found')
    _print_objects(objects, bool(args.name), args.output, plural, rows)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    plural = KINDS.get(args.kind, ("",))[0]
    client = _client()
    if plural not in DESCRIBABLE:
        raise SystemExit(
            f"error: describe supports {', '.join(DESCRIBABLE)} (e.g. describe pod NAME);"
            f" got {args.kind!r}"
        )
    pages: list[str] = []
    status = 0
    pods = client.list_objects("pods", args.namespace) if plural == "rayservices" else []
    items: dict[str, dict[str, Any]] = {}
    if plural in DESCRIBE_PAGES:
        items = {i["metadata"]["name"]: i for i in client.list_objects(plural, args.namespace)}
    events_of: dict[str, list[dict[str, Any]]] = {}

    def events(owner: str) -> list[dict[str, Any]]:
        if owner not in events_of:
            events_of[owner] = client.events(args.namespace, owner)
        return events_of[owner]

    for name in args.names:
        try:
            if plural in CONFIG_PLURALS.values():
                item = client.get_object(plural, args.namespace, name)
                pages.append(config_tables.describe_config_object(item))
            elif plural == "rayservices":
                item = client.get_service(args.namespace, name)
                pages.append(tables.describe_rayservice(item, events(name), pods))
            elif name in items:
                found = items[name]
                if plural == "rayclusters" and found["status"].get("role") == STANDALONE_ROLE:
                    found = _with_serve_applications(client, args.namespace, found)
                if plural == "rayclusters" and "autoscaler" in found["status"]:
                    found = _with_autoscaler_state(client, args.namespace, found)
                own = describe_pages.events_for(found, events(describe_pages.owner_of(found)))
                pages.append(DESCRIBE_PAGES[plural](found, own))
            elif plural == "rayclusters":  # stored, but no cluster runs (suspended, waiting)
                stored = client.get_raycluster(args.namespace, name)
                pages.append(describe_pages.describe_raycluster(stored, events(name)))
            else:
                raise NotFound(name)
        except NotFound:
            there = ", ".join(
                sorted(o["metadata"]["name"] for o in client.list_objects(plural, args.namespace))
            )
            print(
                f'error: {plural} "{name}" not found in namespace "{args.namespace}"'
                f" ({plural} there: {there or 'none'})",
                file=sys.stderr,
            )
            status = 1
    if pages:
        print("\n\n\n".join(pages))
    return status


def _with_serve_applications(
    client: RayServiceClient, namespace: str, cluster: dict[str, Any]
) -> dict[str, Any]:
    """A standalone cluster's view with the Serve applications on it, asked of its head now
    (the controller watches Serve only on clusters it gave a config); as it was if the head
    cannot be asked."""
    name = cluster["metadata"]["name"]
    try:
        reply = client.get_serve_applications(namespace, name)
    except RayServiceError:
        return cluster
    apps = {app: details.status or "" for app, details in (reply.applications or {}).items()}
    return {**cluster, "status": {**cluster["status"], "serveApplications": apps}}


def cmd_delete(args: argparse.Namespace) -> int:
    client = _client()
    if args.filename:
        targets = [
            (
                plural_of(d),
                (d.get("metadata") or {}).get("namespace") or "default",
                d["metadata"]["name"],
            )
            for d in _read_documents(args.filename, "delete")
        ]
    elif args.kind and args.name and KINDS.get(args.kind, ("",))[0] in DELETABLE:
        targets = [(KINDS[args.kind][0], args.namespace, args.name)]
    else:
        raise SystemExit(
            "error: use delete -f FILE, or delete rayservice|raycluster|secret|configmap NAME"
        )
    status = 0
    for plural, namespace, name in targets:
        try:
            if plural in CONFIG_PLURALS.values():
                for warning in client.delete_object(plural, namespace, name):
                    print(f"Warning: {warning}", file=sys.stderr)
            elif plural == "rayclusters":
                client.delete_raycluster(namespace, name)
            else:
                client.delete_service(namespace, name)
        except NotFound as e:  # as kubectl: the other objects of the file still go
            print(f"error: {e}", file=sys.stderr)
            status = 1
            continue
        if plural in CONFIG_PLURALS.values():
            print(f'{plural[:-1]} "{name}" deleted')
            continue
        print(f'{plural[:-1]}.ray.io "{name}" deleted')
        if args.wait:
            outcome = wait_for_absence(client, plural, namespace, name, args.timeout)
            if not outcome:
                print(f"error: {name} still exists after {args.timeout:.0f}s", file=sys.stderr)
                return 1
    return status


def wait_for_absence(
    client: RayServiceClient, plural: str, namespace: str, name: str, timeout: float
) -> bool:
    get = client.get_raycluster if plural == "rayclusters" else client.get_service
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            get(namespace, name)
        except NotFound:
            return True
        time.sleep(0.5)
    return False


def cmd_logs(args: argparse.Namespace) -> int:
    print(_client().logs(args.namespace, args.name, args.pod, args.tail), end="")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    listen_token(args.host, args.token_file)  # refuse here, not in the background process
    _kubernetes_options_fit(args)
    listen_args = ["--host", args.host, "--service-address", args.service_address]
    if args.token_file is not None:
        listen_args += ["--token-file", str(args.token_file.resolve())]
    if args.head_service_address is not None:
        listen_args += ["--head-service-address", args.head_service_address]
    listen_args += ["--backend", args.backend]
    if args.kubeconfig is not None:
        listen_args += ["--kubeconfig", str(args.kubeconfig.resolve())]
    if args.context is not None:
        listen_args += ["--context", args.context]
    print(daemon.start(home_dir(), RayServiceClient(local_api_url(args.host)), listen_args))
    return 0


def cmd_stop(_: argparse.Namespace) -> int:
    print(daemon.stop(home_dir()))
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    client = _client()
    if args.action == "status":
        print(rollout.status_text(client.get_service(args.namespace, args.name)))
    elif args.action == "history":
        print(rollout.history_text(client.rollout_history(args.namespace, args.name)))
    else:
        answer = client.rollout(args.namespace, args.name, args.action)
        print(f"rayservice.ray.io/{args.name}: {answer['message']}")
    return 0


def cmd_controller(args: argparse.Namespace) -> int:
    token = listen_token(args.host, args.token_file)  # before the heavy imports and any bind
    _kubernetes_options_fit(args)
    # heavy: only the controller needs them
    from rayservice.api.app import create_app
    from rayservice.controller.process import KubernetesAccess, serve_forever

    home = home_dir()
    serve_forever(
        home,
        create_app,
        host=args.host,
        port=api_port(),
        pid_file=pid_file(home),
        token=token,
        exposure=ExposureSettings(
            args.service_address, args.head_service_address, Backend(args.backend)
        ),
        kubernetes=KubernetesAccess(args.kubeconfig, args.context),
    )
    return 0


def _ip_address(text: str) -> str:
    """An IP literal of this machine (or a wildcard) a Service can listen on, else argparse's
    usage error."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise argparse.ArgumentTypeError(f"{text!r}: scoped IPv6 addresses are not supported")
    if not address_is_local(str(address)):
        raise argparse.ArgumentTypeError(f"{text!r} is not an address of this machine")
    return str(address)


def _backend(text: str) -> str:
    """A backend's name (also when it comes from the environment), else argparse's usage
    error."""
    if text not in {b.value for b in Backend}:
        valid = ", ".join(b.value for b in Backend)
        raise argparse.ArgumentTypeError(f"{text!r} is not a backend (valid: {valid})")
    return text


def _kubernetes_options_fit(args: argparse.Namespace) -> None:
    """--kubeconfig names a Kubernetes cluster: with the local backend it would go unused."""
    if args.backend != Backend.KUBERNETES and args.kubeconfig is not None:
        raise AccessSettingsError(
            f"--kubeconfig {args.kubeconfig} is used only with --backend kubernetes; the backend"
            f" is {args.backend} (from --backend, else ${BACKEND_ENV}, else local)"
        )


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=API_HOST,
        help=f"address the API listens on (default {API_HOST}); any other than loopback"
        " needs --token-file",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="file only you can read whose first line is the token every API request must"
        " carry (clients: RAYSERVICE_TOKEN_FILE)",
    )
    parser.add_argument(
        "--service-address",
        type=_ip_address,
        default=ALL_INTERFACES,
        help="address serve Services of type NodePort or LoadBalancer listen on, reachable"
        f" from other hosts (default {ALL_INTERFACES}: all interfaces; 127.0.0.1 keeps every"
        " Service on this machine); ClusterIP Services listen on 127.0.0.1",
    )
    parser.add_argument(
        "--head-service-address",
        type=_ip_address,
        help="address head Services (Ray's dashboard) of type NodePort or LoadBalancer listen"
        " on; without it every head Service stays on 127.0.0.1",
    )
    parser.add_argument(
        "--backend",
        type=_backend,
        default=os.environ.get(BACKEND_ENV, Backend.LOCAL.value),
        help="where clusters run: processes on this machine (local, the default), or pods of"
        f" KubeRay's operator on a Kubernetes cluster (kubernetes); also ${BACKEND_ENV}",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        help="the Kubernetes backend's kubeconfig (default: the files $KUBECONFIG lists, merged,"
        " else ~/.kube/config)",
    )
    parser.add_argument(
        "--context",
        default=os.environ.get(CONTEXT_ENV),
        help=f"the kubeconfig's context to use (default: its current one); also ${CONTEXT_ENV}",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rayservice", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    start = verbs.add_parser("start", help="run the controller in the background")
    _add_listen_options(start)
    start.set_defaults(func=cmd_start)
    verbs.add_parser("stop", help="stop the controller (services keep serving)").set_defaults(
        func=cmd_stop
    )
    controller = verbs.add_parser("controller", help="run the controller in the foreground")
    _add_listen_options(controller)
    controller.set_defaults(func=cmd_controller)

    apply = verbs.add_parser("apply", help="create or update from a manifest")
    apply.add_argument("-f", "--filename", required=True, help="manifest file, or - for stdin")
    mode = apply.add_mutually_exclusive_group()
    mode.add_argument("--wait", action="store_true", help="wait until the service is Ready")
    mode.add_argument(
        "--dry-run", action="store_true", help="only print what applying would change"
    )
    apply.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds for --wait")
    apply.set_defaults(func=cmd_apply)

    diff = verbs.add_parser(
        "diff", help="show what applying a manifest would change (exit 1 when anything would)"
    )
    diff.add_argument("-f", "--filename", required=True, help="manifest file, or - for stdin")
    diff.set_defaults(func=cmd_diff)

    get = verbs.add_parser(
        "get", help="list rayservices, rayclusters, pods, services, secrets or configmaps"
    )
    get.add_argument("kind")
    get.add_argument("name", nargs="?")
    get.add_argument("-o", "--output", choices=["wide", "json", "yaml"])
    get.add_argument("-n", "--namespace", default="default")
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.set_defaults(func=cmd_get)

    describe = verbs.add_parser(
        "describe",
        help="show objects in detail, with their events: rayservice, pod, service, raycluster,"
        " secret, configmap",
    )
    describe.add_argument("kind")
    describe.add_argument("names", nargs="+", metavar="NAME")
    describe.add_argument("-n", "--namespace", default="default")
    describe.set_defaults(func=cmd_describe)

    delete = verbs.add_parser(
        "delete", help="delete a rayservice (and everything it started) or another object"
    )
    delete.add_argument("kind", nargs="?")
    delete.add_argument("name", nargs="?")
    delete.add_argument("-f", "--filename")
    delete.add_argument("-n", "--namespace", default="default")
    delete.add_argument("--no-wait", dest="wait", action="store_false")
    delete.add_argument("--timeout", type=float, default=120.0)
    delete.set_defaults(func=cmd_delete)

    rollout_verb = verbs.add_parser(
        "rollout",
        help="follow or steer a cluster upgrade: status|history|pause|resume|promote|undo",
    )
    rollout_verb.add_argument(
        "action", choices=["status", "history", "pause", "resume", "promote", "undo"]
    )
    rollout_verb.add_argument("name")
    rollout_verb.add_argument("-n", "--namespace", default="default")
    rollout_verb.set_defaults(func=cmd_rollout)

    logs = verbs.add_parser("logs", help="print node logs of a rayservice")
    logs.add_argument("name")
    logs.add_argument("--pod", help="node (pod) name; the head when left out")
    logs.add_argument("--tail", type=int, default=200)
    logs.add_argument("-n", "--namespace", default="default")
    logs.set_defaults(func=cmd_logs)
    workloads.add_verbs(verbs, _client, DEFAULT_TIMEOUT)
    render.add_verb(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except InvalidSpec as e:
        print("error: the manifest was refused; nothing was changed:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem.render()}", file=sys.stderr)
        return 2
    except AccessSettingsError as e:  # a usage error: the same code as argparse's
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RayServiceError as e:
        print(f"error: {e}", file=sys.stderr)
        return ERROR_EXIT_CODES.get(args.verb, 1)
    except BrokenPipeError:  # whoever read the output stopped (`| head`): nothing is wrong
        # what is still buffered would fail again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
