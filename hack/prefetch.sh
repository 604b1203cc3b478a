#!/usr/bin/env bash
# Start tests/integration/prefetch.py in the background, niced (CPU and I/O), so that the apps' first builds run
# beside the Go builds and the first tests instead of inside the fixtures of the last ones. Its output goes to
# .cluster/logs/prefetch.log; hack/pytest.sh prints it at the end. Warm, it finds every build done in a second.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cluster/logs
if [ -f .cluster/prefetch.pid ] && kill -0 "$(cat .cluster/prefetch.pid)" 2>/dev/null; then
  echo "prefetch: already running (pid $(cat .cluster/prefetch.pid))"
  exit 0
fi
nice=(nice -n 19)
if command -v ionice >/dev/null; then nice+=(ionice -c 3); fi
PYTHONPATH="$PWD/operator" nohup "${nice[@]}" .venv/bin/python tests/integration/prefetch.py \
  > .cluster/logs/prefetch.log 2>&1 < /dev/null &
echo $! > .cluster/prefetch.pid
echo "prefetch: building the apps in the background (pid $!, log .cluster/logs/prefetch.log)"
