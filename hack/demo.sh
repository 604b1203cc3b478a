#!/usr/bin/env bash
# make demo: the local cluster is up (make cluster-up ran first). Install the CRD, run the operator,
# apply the samples and watch the SyncClusters until one is Ready.
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBECONFIG="$PWD/.cluster/kubeconfig"
kubectl=.cluster/bin/kubectl

$kubectl apply --server-side -f crds/
$kubectl wait --for condition=Established crd/syncclusters.synchro.dev --timeout=60s

if ! python3 hack/cluster.py status 2>/dev/null | grep -q '^operator .*running'; then
  python3 hack/cluster.py start-operator
fi

$kubectl create namespace demo --dry-run=client -o yaml | $kubectl apply -f -
$kubectl apply -n demo -k manifests/samples/

condition() {  # condition NAME TYPE -> its status
  $kubectl get synccluster "$1" -n demo -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}"
}
wait_condition() {  # wait_condition NAME TYPE
  local deadline=$((SECONDS + 120))
  until [ "$(condition "$1" "$2")" = True ]; do
    if [ $SECONDS -gt $deadline ]; then $kubectl describe synccluster -n demo "$1"; exit 1; fi
    sleep 1
  done
}

echo "waiting for SyncCluster web to roll out (operator log: .cluster/logs/operator.log)"
wait_condition web RolloutComplete
# kwok nodes run no containers: start each pod's synchro-probe sidecar on the host, with the pod's own env.
for name in web cms; do echo "probe agents for $name: $(.venv/bin/python hack/podenv.py start demo $name)"; done
wait_condition web Ready
$kubectl get syncclusters -n demo
echo
$kubectl get deployment web -n demo -o jsonpath='{range .spec.template.spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}'
cat <<TXT

The operator keeps running. Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl scale synccluster/web -n demo --replicas=5
  hack/kubectl-synchro status web -n demo       # the probe's who-hears-whom matrix
  kubectl describe synccluster -n demo cms      # PubSubHealthy: no Directus process subscribes (kwok runs none)
  kubectl describe synccluster -n demo chat    # Managed Redis: on kwok nodes no Redis process runs, so it stays held at 1
  make cluster-down                              # stops the operator and the cluster
TXT
