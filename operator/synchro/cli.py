"""`synchro run` runs the operator, `synchro probe-agent` the sidecar, `synchro status NAME` shows the probe,
`synchro release NAME` does the operator's deletion work when the operator is gone, `synchro rotate-password NAME`
asks the operator for new managed Redis passwords.

Installed as `kubectl-synchro` on the PATH, the last one also works as `kubectl synchro status NAME`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synchro.config import Config
    from synchro.elector import Elector

log = logging.getLogger("synchro")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from synchro.config import Config

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = Config.from_env()
    if args.no_leader_election:
        config = dataclasses.replace(config, leader_election=False)
    asyncio.run(operate(args, config))
    return 0


async def operate(args: argparse.Namespace, config: Config) -> None:
    """Serve health and metrics, take the Lease (unless election is off), then run kopf while holding it."""
    import kopf

    import synchro.handlers  # noqa: F401 - registers the handlers
    from synchro import elector, health, kube, metrics

    metrics.serve(config.metrics_port)
    identity = config.identity or f"{socket.gethostname()}-{os.getpid()}"
    namespace = config.lease_namespace or pod_namespace() or (args.namespace or ["default"])[0]
    gateway = kube.Kube(kube.load_client(), timeout=config.lease.renew_deadline / 2)
    lead = elector.Elector(gateway, namespace, config.lease_name, identity, config.lease)
    if args.liveness:
        await health.serve(args.liveness, lambda: role(lead, config.leader_election))
    operator = kopf.operator(standalone=True, clusterwide=not args.namespace, namespaces=args.namespace or ())
    if not config.leader_election:
        metrics.LEADER.set(1)
        await operator
        return
    log.info("waiting for Lease %s/%s as %s", namespace, config.lease_name, identity)
    if await elector.stand_by(lead):
        await elector.lead_while(lead, operator)
    else:
        operator.close()


def role(lead: Elector, election: bool) -> str:
    if not election:
        return f"leader {lead.identity} (leader election off)"
    if lead.leading:
        return f"leader {lead.identity}"
    return f"standby {lead.identity}; leader: {lead.holder or 'none'}"


def pod_namespace() -> str:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    return open(path).read().strip() if os.path.exists(path) else ""


def probe_agent(args: argparse.Namespace) -> int:
    from synchro.probe import agent

    return agent.main()


def status(args: argparse.Namespace) -> int:
    from synchro import kube, statusview

    body = kube.Kube(kube.load_client()).get(
        api_version(), "SyncCluster", args.namespace or current_namespace(), args.name
    )
    if body is None:
        print(f"SyncCluster {args.name} not found", file=sys.stderr)
        return 1
    print(statusview.render(body))
    return 0


def release(args: argparse.Namespace) -> int:
    """What the operator's delete handler does (give the targets back, or with Retain orphan the managed Redis),
    then the finalizer removed: for a SyncCluster deleted while no operator runs, e.g. with its namespace."""
    import asyncio

    from synchro import api, kube, reconcile
    from synchro.config import Config
    from synchro.redis.connect import Connections

    namespace = args.namespace or current_namespace()
    gateway = kube.Kube(kube.load_client())
    body = gateway.get(api.API_VERSION, api.KIND, namespace, args.name)
    if body is None:
        print(f"SyncCluster {args.name} not found in {namespace}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    asyncio.run(reconcile.release(reconcile.Sources(gateway, Config(), Connections(), {}), body))
    finalizers = [f for f in body["metadata"].get("finalizers") or [] if f != api.FINALIZER]
    gateway.merge_patch(api.API_VERSION, api.KIND, namespace, args.name, {"metadata": {"finalizers": finalizers}})
    print(f"SyncCluster {namespace}/{args.name} released; its finalizer is removed")
    return 0


def rotate_password(args: argparse.Namespace) -> int:
    """Set synchro.dev/rotate-password to the time now: the operator does the rotation (docs/synccluster.md)."""
    import datetime

    from synchro import api, kube

    namespace = args.namespace or current_namespace()
    gateway = kube.Kube(kube.load_client())
    if gateway.get(api.API_VERSION, api.KIND, namespace, args.name) is None:
        print(f"SyncCluster {args.name} not found in {namespace}", file=sys.stderr)
        return 1
    request = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")
    patch = {"metadata": {"annotations": {api.ROTATE_PASSWORD_ANNOTATION: request}}}
    gateway.merge_patch(api.API_VERSION, api.KIND, namespace, args.name, patch)
    print(f"SyncCluster {namespace}/{args.name}: rotation {request} asked; see status.redis.passwordRotation")
    return 0


def api_version() -> str:
    from synchro import api

    return api.API_VERSION


def current_namespace() -> str:
    from kubernetes import config

    try:
        _, context = config.list_kube_config_contexts()
        return str(context.get("context", {}).get("namespace") or "default")
    except config.ConfigException:
        return "default"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synchro")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the operator against the current kubeconfig or in-cluster config")
    p.add_argument("-n", "--namespace", action="append", help="serve only this namespace (repeatable)")
    p.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL ('' to disable)")
    p.add_argument(
        "--no-leader-election", action="store_true", help="reconcile at once, without the Lease (one replica only)"
    )
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run)
    a = sub.add_parser("probe-agent", help="the synchro-probe sidecar (configured by its environment)")
    a.set_defaults(func=probe_agent)
    st = sub.add_parser("status", help="a SyncCluster's pods and who hears whom")
    st.add_argument("name")
    st.add_argument("-n", "--namespace")
    st.set_defaults(func=status)
    rl = sub.add_parser("release", help="the operator's deletion work for a SyncCluster, when no operator runs")
    rl.add_argument("name")
    rl.add_argument("-n", "--namespace")
    rl.set_defaults(func=release)
    rp = sub.add_parser("rotate-password", help="new passwords for a SyncCluster's managed Redis, rolled out live")
    rp.add_argument("name")
    rp.add_argument("-n", "--namespace")
    rp.set_defaults(func=rotate_password)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
