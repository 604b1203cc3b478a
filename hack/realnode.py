#!/usr/bin/env python3
"""A real node on the local control plane: containerd + runc + CNI bridge, kubelet, kube-proxy, CoreDNS.

    hack/realnode.py up      start what is not running; return once the node is Ready and DNS answers
    hack/realnode.py down    stop kube-proxy, kubelet, the pods' containers and containerd (by recorded PID)
    hack/realnode.py status  one line per process, and the node's Ready condition

`make cluster-up NODE=real` (hack/cluster.py up with NODE=real) runs `up` after the control plane.
Needs root. The node is labelled and tainted synchro.dev/node=real, so only pods that select it
(nodeSelector + toleration) run on it; the kwok nodes stay the default for everything else.
See docs/real-node.md.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

# Before importing cluster: pods reach the apiserver at the host IP (the `kubernetes` Service), not loopback.
os.environ.setdefault("SYNCHRO_API_BIND", "0.0.0.0")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cluster
import images

# The node is named after the host: the apiserver reaches a kubelet (logs, exec, port-forward) at the node's
# Hostname address first, and the host's name resolves here while an invented one would not.
NODE = os.environ.get("SYNCHRO_REAL_NODE", socket.gethostname())
BRIDGE = "synchro0"
LABEL_KEY, LABEL_VALUE = "synchro.dev/node", "real"
CLUSTER_DNS = "10.96.0.10"
STATE = cluster.STATE / "realnode"  # configs and kubeconfigs
VAR = Path("/var/lib/synchro")  # container and kubelet state: needs a filesystem overlayfs and mounts work on
RUN = Path("/run/synchro")
CONTAINERD_SOCK = RUN / "containerd" / "containerd.sock"
CNI_BIN = Path("/usr/lib/cni")
CNI_CONF = STATE / "cni"
PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "ctr": "containerd",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "umoci": "umoci",
    "buildah": "buildah",  # the operator image, from the Dockerfile
    "debootstrap": "debootstrap",
    "gcc": "gcc",
}


def pause_image() -> str:
    return images.images()["pause"].ref


def coredns_image() -> str:
    return images.images()["coredns"].ref


# ---------------------------------------------------------------- host preparation


def preflight() -> None:
    if os.geteuid() != 0:
        raise SystemExit("the real node needs root (containers, mounts, iptables)")
    if not Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        raise SystemExit("no cgroup memory controller mounted under /sys/fs/cgroup")
    missing = sorted({pkg for cmd, pkg in PACKAGES.items() if not shutil.which(cmd)})
    if not (CNI_BIN / "bridge").exists():
        missing.append("containernetworking-plugins")
    if missing:
        print(f"installing Debian packages {missing}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)
    for binary, component in (("kubelet", "kubernetes"), ("kube-proxy", "kubernetes"), ("coredns", "coredns")):
        if not (cluster.BIN / binary).exists():  # build.py reuses its cache, else builds from the Go proxy
            subprocess.run([sys.executable, str(cluster.ROOT / "hack" / "build.py"), component], check=True)


def sysctl(key: str, value: str) -> None:
    path = Path("/proc/sys") / key.replace(".", "/")
    if not path.exists():
        raise SystemExit(f"kernel lacks {key} (needed by the real node's pod network)")
    if path.read_text().strip() != value:
        path.write_text(value)


def ensure_api_reachable_from_pods() -> None:
    """Pods reach the apiserver through the `kubernetes` Service, i.e. at <host IP>:6443.

    An apiserver this cluster started on loopback only is restarted once, through cluster.py, on 0.0.0.0.
    """
    ip = cluster.host_ip()
    if port_open(ip, cluster.API_PORT):
        return
    proc = {p.name: p for p in cluster.processes()}["kube-apiserver"]
    if not cluster.pid_of(proc):
        raise SystemExit(
            f"the apiserver does not listen on {ip}:{cluster.API_PORT} and was not started by "
            "hack/cluster.py; start it with SYNCHRO_API_BIND=0.0.0.0"
        )
    print(
        f"restarting kube-apiserver to bind {cluster.API_BIND} (pods reach it at {ip}:{cluster.API_PORT})", flush=True
    )
    cluster.stop(proc)
    cluster.start(proc)
    cluster.wait_for(lambda: cluster.api_get("/readyz")[0] == 200, "kube-apiserver /readyz", 120)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


# ---------------------------------------------------------------- configuration


def write_pki() -> None:
    cluster.issue_cert(f"kubelet-{NODE}", f"/O=system:nodes/CN=system:node:{NODE}", client=True)
    cluster.issue_cert("kube-proxy", "/CN=system:kube-proxy", client=True)
    cluster.write_kubeconfig(STATE / "kubelet.kubeconfig", f"kubelet-{NODE}")
    cluster.write_kubeconfig(STATE / "kube-proxy.kubeconfig", "kube-proxy")


def write_containerd_config() -> Path:
    path = STATE / "containerd.toml"
    path.write_text(f"""\
version = 2
root = "{VAR / "containerd"}"
state = "{RUN / "containerd"}"

[grpc]
  address = "{CONTAINERD_SOCK}"

[metrics]
  address = "127.0.0.1:10391"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image()}"
  enable_selinux = false
  # This VM withholds CAP_SYS_RESOURCE even from root, so no process may lower its oom_score_adj:
  # clamp the kubelet's negative scores (sandboxes -998, Guaranteed pods -997) to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{CNI_CONF}"
    max_conf_num = 1
""")
    return path


def write_kubelet_config() -> Path:
    path = STATE / "kubelet.yaml"
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(cluster.PKI / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,  # this VM mounts cgroup v1
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCK}",
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": "cluster.local",
        "resolvConf": "/etc/resolv.conf",
        "address": "0.0.0.0",
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "failSwapOn": False,
        "serializeImagePulls": False,
        "registerWithTaints": [{"key": LABEL_KEY, "value": LABEL_VALUE, "effect": "NoSchedule"}],
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%"},
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "maxPods": 110,
        "rotateCertificates": False,
        "oomScoreAdj": 0,  # the default -999 needs CAP_SYS_RESOURCE, which this VM withholds
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def write_kube_proxy_config() -> Path:
    path = STATE / "kube-proxy.yaml"
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(STATE / "kube-proxy.kubeconfig")},
        "mode": "iptables",
        "clusterCIDR": cluster.CLUSTER_CIDR,
        "hostnameOverride": NODE,
        "bindAddress": "0.0.0.0",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "conntrack": {"maxPerCore": 0, "min": 0},  # leave the host's conntrack sysctls alone
        "oomScoreAdj": 0,
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def ensure_bridge(pod_cidr: str) -> None:
    """A bridge left by an earlier node with another podCIDR would make every sandbox fail: drop it."""
    import ipaddress

    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE], capture_output=True, text=True)
    if out.returncode:
        return  # no bridge yet; the CNI bridge plugin makes it
    gateway = f"{ipaddress.ip_network(pod_cidr)[1]}/{ipaddress.ip_network(pod_cidr).prefixlen}"
    addrs = [line.split()[3] for line in out.stdout.splitlines()]
    if addrs and gateway not in addrs:
        print(f"removing bridge {BRIDGE} ({', '.join(addrs)}): the node's podCIDR is now {pod_cidr}", flush=True)
        subprocess.run(["ip", "link", "delete", BRIDGE], check=True)


def write_cni_config(pod_cidr: str) -> None:
    CNI_CONF.mkdir(parents=True, exist_ok=True)
    config = {
        "cniVersion": "1.0.0",
        "name": "synchro",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(VAR / "cni" / "networks"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    path = CNI_CONF / "10-synchro.conflist"
    text = json.dumps(config, indent=2) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


# ---------------------------------------------------------------- processes


def processes() -> list[cluster.Proc]:
    return [
        cluster.Proc(
            "containerd",
            [
                shutil.which("containerd") or "/usr/bin/containerd",
                "--config",
                str(STATE / "containerd.toml"),
            ],
            10391,
        ),
        cluster.Proc(
            "kubelet",
            [
                str(cluster.BIN / "kubelet"),
                f"--config={STATE / 'kubelet.yaml'}",
                f"--kubeconfig={STATE / 'kubelet.kubeconfig'}",
                f"--root-dir={VAR / 'kubelet'}",
                f"--hostname-override={NODE}",
                f"--node-ip={cluster.host_ip()}",
                f"--node-labels={LABEL_KEY}={LABEL_VALUE}",
                "--v=1",
            ],
            10248,
        ),
        cluster.Proc(
            "kube-proxy",
            [
                str(cluster.BIN / "kube-proxy"),
                f"--config={STATE / 'kube-proxy.yaml'}",
                "--v=1",
            ],
            10256,
        ),
    ]


def ctr(*args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["ctr", "--address", str(CONTAINERD_SOCK), "-n", "k8s.io", *args], capture_output=True, text=True
    )
    if check and result.returncode:
        raise SystemExit(f"ctr {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


# ---------------------------------------------------------------- cluster objects


def node() -> dict[str, object] | None:
    code, body = cluster.api_get(f"/api/v1/nodes/{NODE}")
    return json.loads(body) if code == 200 else None


def node_ready() -> bool:
    n = node()
    conditions = n.get("status", {}).get("conditions", []) if n else []  # type: ignore[union-attr]
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def node_pod_cidr() -> str | None:
    n = node()
    return n.get("spec", {}).get("podCIDR") if n else None  # type: ignore[union-attr]


COREDNS_COREFILE = """\
.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    loadbalance
}
"""


def coredns_manifests() -> list[dict[str, object]]:
    meta = {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}}
    labels = {"k8s-app": "kube-dns"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"Corefile": COREDNS_COREFILE}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        "dnsPolicy": "Default",  # upstream is the host's resolver
                        "nodeSelector": {LABEL_KEY: LABEL_VALUE},
                        "tolerations": [
                            {"key": LABEL_KEY, "operator": "Equal", "value": LABEL_VALUE, "effect": "NoSchedule"}
                        ],
                        "containers": [
                            {
                                "name": "coredns",
                                "image": coredns_image(),
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                ],
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "initialDelaySeconds": 10,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "170Mi"},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "clusterIP": CLUSTER_DNS,
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
    ]


def dns_answers(name: str = "kubernetes.default.svc.cluster.local") -> bool:
    """Ask the kube-dns Service for an A record, from the host: kube-proxy's rules, CoreDNS and its API watch.

    A Deployment's status can still say "available" about a pod of the node's previous life; this cannot.
    """
    qid = random.randrange(1 << 16)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        try:
            s.sendto(query, (CLUSTER_DNS, 53))
            reply = s.recv(4096)
        except OSError:
            return False
    rid, flags, _, answers = struct.unpack(">HHHH", reply[:8])
    return rid == qid and flags & 0xF == 0 and answers > 0


# ---------------------------------------------------------------- commands


def up() -> None:
    started = time.monotonic()
    preflight()
    for d in (STATE, CNI_CONF, VAR, RUN, cluster.LOGS, cluster.PIDS):
        d.mkdir(parents=True, exist_ok=True)
    sysctl("net.ipv4.ip_forward", "1")
    sysctl("net.bridge.bridge-nf-call-iptables", "1")
    ensure_api_reachable_from_pods()
    write_pki()
    write_containerd_config()
    write_kubelet_config()
    write_kube_proxy_config()
    procs = {p.name: p for p in processes()}
    cluster.start(procs["containerd"])
    cluster.wait_for(lambda: CONTAINERD_SOCK.exists(), "the containerd socket", 30)
    images.import_images(str(CONTAINERD_SOCK), [])
    cluster.start(procs["kubelet"])
    cluster.wait_for(lambda: node_pod_cidr() is not None, f"node {NODE} to register and get a podCIDR", 120)
    ensure_bridge(str(node_pod_cidr()))
    write_cni_config(str(node_pod_cidr()))
    cluster.start(procs["kube-proxy"])
    cluster.wait_for(node_ready, f"node {NODE} to be Ready", 120)
    cluster.kubectl("apply", "-f", "-", stdin="\n---\n".join(json.dumps(m) for m in coredns_manifests()))
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(real_namespace()))
    cluster.wait_for(dns_answers, f"CoreDNS to answer at {CLUSTER_DNS} (kube-system/coredns on {NODE})", 180)
    print(
        f"real node {NODE} up in {time.monotonic() - started:.1f}s (pods: nodeSelector {LABEL_KEY}={LABEL_VALUE} "
        "plus a toleration of the same taint)",
        flush=True,
    )


def real_namespace() -> dict[str, object]:
    """Namespace `real`: every pod created there lands on the real node, with no selector of its own
    (the PodNodeSelector and PodTolerationRestriction admission plugins read these annotations)."""
    toleration = {"key": LABEL_KEY, "operator": "Equal", "value": LABEL_VALUE, "effect": "NoSchedule"}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "real",
            "annotations": {
                "scheduler.alpha.kubernetes.io/node-selector": f"{LABEL_KEY}={LABEL_VALUE}",
                "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([toleration]),
            },
        },
    }


def down() -> None:
    procs = {p.name: p for p in processes()}
    cluster.stop(procs["kube-proxy"])
    if shutil.which("kube-proxy") or (cluster.BIN / "kube-proxy").exists():
        # Drop the Service rules kube-proxy wrote; harmless when there are none.
        subprocess.run([str(cluster.BIN / "kube-proxy"), "--cleanup"], capture_output=True)
    cluster.stop(procs["kubelet"])
    if cluster.pid_of(procs["containerd"]):
        # The pods' containers outlive the kubelet: kill them through containerd and delete their tasks (which
        # ends their shims), then stop containerd. The next `up` lets the kubelet tear down the old sandboxes'
        # networks (CNI DEL) as it removes them.
        def tasks() -> list[str]:
            return [line.split()[0] for line in ctr("tasks", "ls", check=False).splitlines()[1:] if line.strip()]

        for task in tasks():
            ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task, check=False)

        def all_deleted() -> bool:
            for task in tasks():
                ctr("tasks", "delete", task, check=False)  # refused while it still runs; the next round retries
            return not tasks()

        try:
            cluster.wait_for(all_deleted, "the pods' containers to exit", 30)
        except SystemExit as e:
            print(e, file=sys.stderr)
        cluster.stop(procs["containerd"])
    if node() is not None and cluster.api_get("/readyz")[0] == 200:
        # Without a kubelet the node would linger NotReady; its pods are garbage-collected with it.
        cluster.kubectl("delete", "node", NODE, "--wait=false")


def status() -> int:
    rc = 0
    for p in processes():
        pid = cluster.pid_of(p)
        print(f"{p.name:24} {'running, pid ' + str(pid) if pid else 'stopped'}")
        rc |= 0 if pid else 1
    print(f"{'node ' + NODE:24} {'Ready' if node_ready() else 'not Ready'}")
    return rc


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "status":
        return status()
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
