#!/usr/bin/env python3
"""Run a real local Kubernetes control plane on loopback, with kwok nodes and a Redis.

    hack/cluster.py up      start whatever is not running yet; return once /readyz is ok and a node is Ready
    hack/cluster.py down    stop what `up` started, by the PIDs it recorded
    hack/cluster.py status  one line per process
    hack/cluster.py clean   down, then forget all state (etcd data, certificates)
    hack/cluster.py stop NAME  stop one component (etcd, kube-apiserver, ...); `up` starts it again, in the mode
                            the cluster was brought up in (NODE=real or kwok, recorded in .cluster/mode)
    hack/cluster.py start-operator [--as-service-account] | stop-operator
                            the operator on the host, as `make demo` runs it; with the flag, authenticated as
                            the Helm chart's ServiceAccount with only the chart's RBAC (as the tests run it)

Everything lives in .cluster/: pki/, etcd/, logs/, pids/ and the admin kubeconfig.
The binaries come from hack/build.py, which links them into .cluster/bin/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".cluster"
BIN = STATE / "bin"
PKI = STATE / "pki"
LOGS = STATE / "logs"
PIDS = STATE / "pids"
KUBECONFIG = STATE / "kubeconfig"
AUDIT_LOG = LOGS / "audit.log"
# The audit log holds one line per write by the operator's ServiceAccount (never a body): the tests count who wrote
# what, and when (tests/integration/test_operator_failover.py counts a cut-off leader's writes by source address).
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Metadata",
            "users": ["system:serviceaccount:synchro-system:synchro"],
            "verbs": ["create", "update", "patch", "delete"],
        },
        {"level": "None"},
    ],
}

# A second cluster (say, a bench in another git worktree while tests run here) moves every port by this offset.
# Only the cluster at offset 0 may run the real node: the kubelet, containerd and iptables are machine-wide.
PORT_OFFSET = int(os.environ.get("SYNCHRO_PORT_OFFSET", "0"))
API_PORT = int(os.environ.get("SYNCHRO_API_PORT", 6443 + PORT_OFFSET))
ETCD_PORT = int(os.environ.get("SYNCHRO_ETCD_PORT", 2379 + PORT_OFFSET))
REDIS_PORT = int(os.environ.get("SYNCHRO_REDIS_PORT", 6379 + PORT_OFFSET))
CONTROLLER_MANAGER_PORT, SCHEDULER_PORT, KWOK_PORT = 10257 + PORT_OFFSET, 10259 + PORT_OFFSET, 10247 + PORT_OFFSET
OPERATOR_HEALTH_PORT, OPERATOR_METRICS_PORT = 18080 + PORT_OFFSET, 9090 + PORT_OFFSET
KWOK_NODES = int(os.environ.get("SYNCHRO_KWOK_NODES", "3"))
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_CIDR = "10.244.0.0/16"
LEASE_NAMESPACE = "synchro-system"  # the operator's Lease (leader election) and ServiceAccount
# The mode a running cluster was brought up in, so that restarting one component (`up` again, as the tests'
# session fixture and `make test-apps` do, without NODE) never turns a real-node cluster into a kwok one.
MODE_FILE = STATE / "mode"


def node_mode(asked: str | None, recorded: str | None) -> str:
    """NODE if given, else the mode of the cluster that runs (recorded by its `up`), else kwok."""
    return (asked or recorded or "kwok").strip()


def api_bind(mode: str, override: str | None = None) -> str:
    """Real pods reach the apiserver through the `kubernetes` Service, so the real-node tier binds beyond
    loopback."""
    return override or ("0.0.0.0" if mode == "real" else "127.0.0.1")


MODE = node_mode(os.environ.get("NODE"), MODE_FILE.read_text() if MODE_FILE.exists() else None)
API_BIND = api_bind(MODE, os.environ.get("SYNCHRO_API_BIND"))
API_URL = f"https://127.0.0.1:{API_PORT}"


# ---------------------------------------------------------------- certificates


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def issue_cert(name: str, subject: str, sans: list[str] | None = None, client: bool = False) -> None:
    key, crt = PKI / f"{name}.key", PKI / f"{name}.crt"
    if crt.exists():
        return
    ext = PKI / f"{name}.ext"
    usage = "clientAuth" if client else "serverAuth"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment", f"extendedKeyUsage={usage}"]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n")
    openssl("genrsa", "-out", str(key), "2048")
    csr = PKI / f"{name}.csr"
    openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(PKI / "ca.crt"),
        "-CAkey",
        str(PKI / "ca.key"),
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
    )
    csr.unlink()
    ext.unlink()


def ensure_pki() -> None:
    PKI.mkdir(parents=True, exist_ok=True)
    if not (PKI / "ca.crt").exists():
        openssl("genrsa", "-out", str(PKI / "ca.key"), "2048")
        openssl(
            "req",
            "-x509",
            "-new",
            "-key",
            str(PKI / "ca.key"),
            "-subj",
            "/CN=synchro-local-ca",
            "-days",
            "3650",
            "-out",
            str(PKI / "ca.crt"),
        )
    if not (PKI / "sa.key").exists():
        openssl("genrsa", "-out", str(PKI / "sa.key"), "2048")
        openssl("rsa", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))
    issue_cert(
        "apiserver",
        "/CN=kube-apiserver",
        sans=[
            "IP:127.0.0.1",
            "IP:10.96.0.1",
            f"IP:{host_ip()}",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ],
    )
    issue_cert("admin", "/O=system:masters/CN=synchro-admin", client=True)
    issue_cert("controller-manager", "/CN=system:kube-controller-manager", client=True)
    issue_cert("scheduler", "/CN=system:kube-scheduler", client=True)
    issue_cert("kwok", "/O=system:masters/CN=kwok", client=True)
    issue_cert("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", client=True)


def host_ip() -> str:
    """The address Services of the apiserver point at: the first non-loopback IPv4, else loopback."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        addr = parts[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    return "127.0.0.1"


def write_kubeconfig(path: Path, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "synchro", "cluster": {"server": API_URL, "certificate-authority": str(PKI / "ca.crt")}}],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(PKI / f"{user}.crt"),
                    "client-key": str(PKI / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "synchro", "context": {"cluster": "synchro", "user": user}}],
        "current-context": "synchro",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class Proc:
    name: str
    argv: list[str]
    ready_port: int  # a TCP port that accepts connections once the process is up


def operator_proc() -> Proc:
    """The operator as `make demo` runs it: on the host, against the admin kubeconfig.
    SYNCHRO_OPERATOR_PYTHON: another venv's python, e.g. that of another checkout (bench/ab.py)."""
    python = os.environ.get("SYNCHRO_OPERATOR_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    return Proc(
        "operator",
        [python, "-m", "synchro", "run", "--liveness", f"http://127.0.0.1:{OPERATOR_HEALTH_PORT}/healthz"],
        OPERATOR_HEALTH_PORT,
    )


def service_account_kubeconfig() -> Path:
    """Apply the Helm chart's RBAC (cluster-wide) and write a kubeconfig holding a token of its ServiceAccount,
    so that the operator runs with exactly the rights a Helm install grants it, and no more."""
    chart = ROOT / "charts" / "synchro"
    rbac = subprocess.run(
        [
            str(BIN / "helm"),
            "template",
            "synchro",
            str(chart),
            "--namespace",
            "synchro-system",
            "--set",
            "crds.install=false",
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/rbac.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "synchro-system"}}),
    )
    kubectl("apply", "-f", "-", stdin=rbac)
    token = kubectl("create", "token", "synchro", "-n", "synchro-system", "--duration=24h").strip()
    path = STATE / "operator-sa.kubeconfig"
    server = os.environ.get("SYNCHRO_OPERATOR_API_URL", API_URL)  # a fault test's proxy in front of the apiserver
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "synchro",
                "clusters": [
                    {"name": "synchro", "cluster": {"server": server, "certificate-authority": str(PKI / "ca.crt")}}
                ],
                "users": [{"name": "synchro", "user": {"token": token}}],
                "contexts": [{"name": "synchro", "context": {"cluster": "synchro", "user": "synchro"}}],
            },
            indent=2,
        )
        + "\n"
    )
    return path


def real_node_pod_cidr() -> str | None:
    code, body = api_get("/api/v1/nodes?labelSelector=synchro.dev%2Fnode%3Dreal")
    items = json.loads(body).get("items", []) if code == 200 else []
    return next((n["spec"]["podCIDR"] for n in items if n.get("spec", {}).get("podCIDR")), None)


def operator_env() -> dict[str, str]:
    """The operator may only open connections that stay on this machine: loopback, and the real node's pod
    range when it runs. kwok pod IPs, and Services that lead to them, go nowhere, and this sandbox must never
    send traffic to private ranges it does not own."""
    networks = ["127.0.0.0/8", *filter(None, [real_node_pod_cidr()])]
    return {
        "SYNCHRO_REDIS_NETWORKS": os.environ.get("SYNCHRO_REDIS_NETWORKS", ",".join(networks)),
        "SYNCHRO_METRICS_PORT": os.environ.get("SYNCHRO_METRICS_PORT", str(OPERATOR_METRICS_PORT)),
        # The Lease where the chart keeps it (its release namespace), which the chart's RBAC lets it write.
        "SYNCHRO_LEASE_NAMESPACE": LEASE_NAMESPACE,
    }


def ensure_lease_namespace() -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}}
    kubectl("apply", "-f", "-", stdin=json.dumps(namespace))


def processes() -> list[Proc]:
    kc = lambda who: str(PKI / f"{who}.kubeconfig")  # noqa: E731
    return [
        Proc(
            "etcd",
            [
                str(BIN / "etcd"),
                "--name=synchro",
                f"--data-dir={STATE / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{ETCD_PORT}",
                f"--advertise-client-urls=http://127.0.0.1:{ETCD_PORT}",
                f"--listen-peer-urls=http://127.0.0.1:{ETCD_PORT + 1}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PORT + 1}",
                f"--initial-cluster=synchro=http://127.0.0.1:{ETCD_PORT + 1}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
            ETCD_PORT,
        ),
        Proc(
            "kube-apiserver",
            [
                str(BIN / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
                f"--bind-address={API_BIND}",
                f"--secure-port={API_PORT}",
                f"--advertise-address={host_ip()}",
                f"--tls-cert-file={PKI / 'apiserver.crt'}",
                f"--tls-private-key-file={PKI / 'apiserver.key'}",
                f"--client-ca-file={PKI / 'ca.crt'}",
                f"--kubelet-client-certificate={PKI / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={PKI / 'apiserver-kubelet-client.key'}",
                f"--service-account-key-file={PKI / 'sa.pub'}",
                f"--service-account-signing-key-file={PKI / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                f"--cert-dir={STATE / 'apiserver-certs'}",
                "--profiling=false",
                # Namespace annotations pick a node selector and tolerations:
                # how namespace `real` reaches the real node.
                "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
                "--endpoint-reconciler-type=lease",
                f"--audit-policy-file={STATE / 'audit-policy.json'}",
                f"--audit-log-path={AUDIT_LOG}",
                "--audit-log-maxsize=50",
                "--audit-log-maxbackup=1",
            ],
            API_PORT,
        ),
        Proc(
            "kube-controller-manager",
            [
                str(BIN / "kube-controller-manager"),
                f"--kubeconfig={kc('controller-manager')}",
                f"--authentication-kubeconfig={kc('controller-manager')}",
                f"--authorization-kubeconfig={kc('controller-manager')}",
                "--bind-address=127.0.0.1",
                f"--secure-port={CONTROLLER_MANAGER_PORT}",
                "--leader-elect=false",
                f"--service-account-private-key-file={PKI / 'sa.key'}",
                f"--root-ca-file={PKI / 'ca.crt'}",
                f"--cluster-signing-cert-file={PKI / 'ca.crt'}",
                f"--cluster-signing-key-file={PKI / 'ca.key'}",
                "--use-service-account-credentials=true",
                "--allocate-node-cidrs=true",
                f"--cluster-cidr={CLUSTER_CIDR}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--controllers=*,bootstrapsigner,tokencleaner",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
            CONTROLLER_MANAGER_PORT,
        ),
        Proc(
            "kube-scheduler",
            [
                str(BIN / "kube-scheduler"),
                f"--kubeconfig={kc('scheduler')}",
                f"--authentication-kubeconfig={kc('scheduler')}",
                f"--authorization-kubeconfig={kc('scheduler')}",
                "--bind-address=127.0.0.1",
                f"--secure-port={SCHEDULER_PORT}",
                "--leader-elect=false",
                # Like the controller-manager's: kind's 50 QPS would make binding pods the bench's bottleneck.
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
            SCHEDULER_PORT,
        ),
        Proc(
            "kwok",
            [
                str(BIN / "kwok"),
                f"--kubeconfig={kc('kwok')}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{KWOK_PORT}",
            ],
            KWOK_PORT,
        ),
        Proc(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(REDIS_PORT),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ],
            REDIS_PORT,
        ),
    ]


def pid_of(p: Proc) -> int | None:
    """The recorded PID, if that process is still ours (same executable); stale files are removed."""
    pid_file = PIDS / f"{p.name}.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().strip() or 0)
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        pid_file.unlink()
        return None
    if exe.removesuffix(" (deleted)") != os.path.realpath(p.argv[0]):
        pid_file.unlink()
        return None
    return pid


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(p: Proc) -> None:
    if pid_of(p):
        return
    if port_open(p.ready_port):
        raise SystemExit(f"{p.name}: port {p.ready_port} is already taken by a process this cluster did not start")
    with open(LOGS / f"{p.name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            p.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=STATE
        )
    (PIDS / f"{p.name}.pid").write_text(f"{proc.pid}\n")
    wait_for(lambda: port_open(p.ready_port) or exited(proc, p), f"{p.name} to listen on {p.ready_port}", 60)


def alive(p: Proc) -> bool:
    """False while it runs; a process that died ends the command with the end of its log."""
    pid = pid_of(p)
    if pid and not zombie(pid):
        return True
    tail = (LOGS / f"{p.name}.log").read_text(errors="replace").splitlines()[-15:]
    raise SystemExit(f"{p.name} exited:\n" + "\n".join(tail))


def etcd_healthy() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ETCD_PORT}/health", timeout=5) as r:
            return bool(json.loads(r.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def exited(proc: subprocess.Popen[bytes], p: Proc) -> bool:
    if proc.poll() is not None:
        tail = (LOGS / f"{p.name}.log").read_text(errors="replace").splitlines()[-15:]
        raise SystemExit(f"{p.name} exited with {proc.returncode}:\n" + "\n".join(tail))
    return False


def stop(p: Proc) -> None:
    pid = pid_of(p)
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ChildProcessError):  # reap it if it is our child; else /proc tells
            os.waitpid(pid, os.WNOHANG)
        if zombie(pid):
            break
        time.sleep(0.1)
    else:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    (PIDS / f"{p.name}.pid").unlink(missing_ok=True)
    print(f"stopped {p.name} (pid {pid})")


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


# ---------------------------------------------------------------- readiness


def wait_for(check, what: str, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def api_get(path: str) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    ctx.load_cert_chain(str(PKI / "admin.crt"), str(PKI / "admin.key"))
    try:
        with urllib.request.urlopen(API_URL + path, context=ctx, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def kubectl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "kubectl"), f"--kubeconfig={KUBECONFIG}", *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def kwok_node(i: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": f"kwok-node-{i}",
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": f"kwok-node-{i}",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/agent": "",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
        },
    }


def nodes_ready() -> bool:
    code, body = api_get("/api/v1/nodes")
    if code != 200:
        return False
    for node in json.loads(body)["items"]:
        for cond in node.get("status", {}).get("conditions", []):
            if cond["type"] == "Ready" and cond["status"] == "True":
                return True
    return False


def default_sa_exists() -> bool:
    return api_get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200


# ---------------------------------------------------------------- commands


def up() -> None:
    missing = [b for b in ("etcd", "kube-apiserver", "kwok", "kubectl") if not (BIN / b).exists()]
    if missing:
        raise SystemExit(f"missing binaries {missing}: run hack/build.py first (make build)")
    for d in (STATE, LOGS, PIDS):
        d.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    MODE_FILE.write_text(MODE + "\n")
    ensure_pki()
    write_kubeconfig(KUBECONFIG, "admin")
    for who in ("controller-manager", "scheduler", "kwok"):
        write_kubeconfig(PKI / f"{who}.kubeconfig", who)
    (STATE / "audit-policy.json").write_text(json.dumps(AUDIT_POLICY, indent=2) + "\n")
    procs = {p.name: p for p in processes()}
    start(procs["etcd"])
    # etcd listens before it has read its data: a large one (left by a bench) took 27 s here, and a kube-apiserver
    # started meanwhile gives up on its storage after 20 s.
    wait_for(etcd_healthy, "etcd /health", 120)
    start(procs["kube-apiserver"])
    wait_for(lambda: alive(procs["kube-apiserver"]) and api_get("/readyz")[0] == 200, "kube-apiserver /readyz", 120)
    for name in ("kube-controller-manager", "kube-scheduler", "kwok", "redis"):
        start(procs[name])
    nodes = "\n---\n".join(json.dumps(kwok_node(i)) for i in range(KWOK_NODES))
    kubectl("apply", "-f", "-", stdin=nodes)
    wait_for(nodes_ready, "a Ready node", 120)
    wait_for(default_sa_exists, "the default ServiceAccount", 60)
    if MODE == "real":  # the real-node tier: hack/realnode.py, docs/real-node.md
        if PORT_OFFSET:
            raise SystemExit("NODE=real needs SYNCHRO_PORT_OFFSET=0: a kubelet and its network are machine-wide")
        real_node_up()
    print(f"cluster up in {time.monotonic() - started:.1f}s; export KUBECONFIG={KUBECONFIG}")


REAL_NODE_ERROR = STATE / "realnode-error"


def real_node_up() -> None:
    """Add the real node. If it cannot come up here, say so loudly and keep the kwok cluster: the
    real-node tests then skip with this exact error (SYNCHRO_REQUIRE_REAL_NODE=1 makes it fatal)."""
    REAL_NODE_ERROR.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, str(ROOT / "hack" / "realnode.py"), "up"], capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode == 0:
        return
    error = (result.stderr.strip().splitlines() or ["realnode.py up failed"])[-20:]
    REAL_NODE_ERROR.write_text("\n".join(error) + "\n")
    print(
        "=" * 72
        + "\nTHE REAL NODE DID NOT COME UP; real-node tests will skip. The error:\n"
        + "\n".join(error)
        + "\n"
        + "=" * 72,
        file=sys.stderr,
    )
    if os.environ.get("SYNCHRO_REQUIRE_REAL_NODE") == "1":
        raise SystemExit(1)


def down() -> None:
    if (ROOT / ".venv" / "bin" / "python").exists():  # host agents that `make demo` runs for kwok pods
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "hack" / "podenv.py"), "stop"], check=False)
    if MODE == "real" or (PIDS / "kubelet.pid").exists():
        subprocess.run([sys.executable, str(ROOT / "hack" / "realnode.py"), "down"], check=True)
    for p in [operator_proc(), *reversed(processes())]:
        stop(p)
    MODE_FILE.unlink(missing_ok=True)  # a cluster that runs nothing has no mode to keep


def status() -> int:
    rc = 0
    for p in [*processes(), operator_proc()]:
        pid = pid_of(p)
        print(f"{p.name:24} {'running, pid ' + str(pid) if pid else 'stopped'}")
        rc |= 0 if pid else 1
    return rc


def clean() -> None:
    down()
    for d in ("etcd", "pki", "apiserver-certs", "logs", "pids", "kubeconfig"):
        path = STATE / d
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "start-operator":
        as_sa = "--as-service-account" in argv[1:]
        ensure_lease_namespace()
        kubeconfig = service_account_kubeconfig() if as_sa else KUBECONFIG
        # SYNCHRO_OPERATOR_SOURCE: the operator's PYTHONPATH, e.g. another checkout's operator/ (bench/ab.py)
        source = os.environ.get("SYNCHRO_OPERATOR_SOURCE", str(ROOT / "operator"))
        os.environ.update(KUBECONFIG=str(kubeconfig), PYTHONPATH=source, **operator_env())
        start(operator_proc())
    elif command == "stop-operator":
        stop(operator_proc())
    elif command == "stop" and len(argv) == 2:  # one component, for the fault tests; `up` starts it again
        stop({p.name: p for p in processes()}[argv[1]])
    elif command == "clean":
        clean()
    elif command == "status":
        return status()
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
