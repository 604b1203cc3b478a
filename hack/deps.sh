#!/usr/bin/env bash
# System packages the cluster and tests need, from Debian's archive. Idempotent.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
command -v go >/dev/null || need+=(golang-go)
command -v buildah >/dev/null || need+=(buildah)  # the operator image from the Dockerfile (hack/dockerfile.py)
[ ${#need[@]} = 0 ] && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
