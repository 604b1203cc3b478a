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

echo "waiting for SyncCluster cms to be Ready (operator log: .cluster/logs/operator.log)"
deadline=$((SECONDS + 120))
until [ "$($kubectl get synccluster cms -n demo -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; do
  if [ $SECONDS -gt $deadline ]; then
    $kubectl describe synccluster -n demo cms; exit 1
  fi
  sleep 1
done
$kubectl get syncclusters -n demo
echo
$kubectl get deployment directus -n demo -o jsonpath='{range .spec.template.spec.containers[0].env[*]}{.name}={.value}{"\n"}{end}'
cat <<TXT

The operator keeps running. Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl scale synccluster/cms -n demo --replicas=5
  kubectl describe synccluster -n demo chat    # Managed Redis: on kwok nodes no Redis process runs, so it stays held at 1
  make cluster-down                              # stops the operator and the cluster
TXT
