"""`synchro run` runs the operator. (`synchro probe-agent` and `synchro status` come with the probe.)"""

from __future__ import annotations

import argparse
import logging
import sys


def run(args: argparse.Namespace) -> int:
    import kopf

    import synchro.handlers  # noqa: F401 - registers the handlers

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kopf.run(
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=args.liveness or None,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="synchro")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the operator against the current kubeconfig or in-cluster config")
    p.add_argument("-n", "--namespace", action="append", help="serve only this namespace (repeatable)")
    p.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="liveness endpoint URL ('' to disable)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
