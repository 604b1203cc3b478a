#!/usr/bin/env bash
# The documented end-to-end path for users who have Docker and kind. The project's own CI machine has no
# Docker engine and cannot download kind's node image, so this script is not run there: `make test` runs the
# same operator against the project's own local cluster instead.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null || { echo "kind-e2e needs $tool on the PATH" >&2; exit 1; }
done
name=${KIND_CLUSTER:-synchro-e2e}
version=$(sed -n 's/^appVersion: *//p' charts/synchro/Chart.yaml | tr -d '"')
kind get clusters | grep -qx "$name" || kind create cluster --name "$name"
# The same Dockerfile `make test` builds with buildah (hack/dockerfile.py); SYNCHRO_BASE overrides its BASE.
docker build ${SYNCHRO_BASE:+--build-arg "BASE=$SYNCHRO_BASE"} -t "synchro.local/operator:$version" .
kind load docker-image --name "$name" "synchro.local/operator:$version"
helm upgrade --install synchro charts/synchro --namespace synchro-system --create-namespace --wait
# A real cluster runs real containers: a managed Redis from Docker Hub's image, and a target whose sidecar runs.
kubectl --context "kind-$name" apply -n default -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "redis:7.2", command: ["sleep", "infinity"]}]
---
apiVersion: synchro.dev/v1alpha1
kind: SyncCluster
metadata: {name: web}
spec:
  replicas: 3
  redis: {mode: Managed, managed: {image: "redis:7.2"}}
  targets: [{name: web, preset: generic}]
YAML
kubectl --context "kind-$name" wait -n default synccluster/web --for=condition=Ready --timeout=300s
kubectl --context "kind-$name" get syncclusters -n default
