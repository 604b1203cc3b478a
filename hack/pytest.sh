#!/usr/bin/env bash
# Run pytest and treat "no tests collected" (exit 5) as the failure it is.
# PYTEST_BESIDE=1: a run beside another one (hack/test.sh): it leaves the demo operator and the prefetch summary
# to that one.
set -uo pipefail
cd "$(dirname "$0")/.."
beside="${PYTEST_BESIDE:-}"
# An operator left running by `make demo` acts as cluster admin beside the operators the tests start: it would
# answer for them, and the chart's RBAC proof (test_chart_install) could not run. It is stopped, and says so.
if [ -z "$beside" ] && python3 hack/cluster.py status 2>/dev/null | grep -q '^operator .*running'; then
  echo "pytest.sh: stopping the operator that make demo left running (it acts as cluster admin and would hide" \
       "the chart's RBAC proof); make demo starts it again" >&2
  python3 hack/cluster.py stop-operator
fi
# --durations: the slowest tests and their times in every log, CI's included (docs/reliability.md quotes them).
.venv/bin/python -m pytest --durations=30 "$@"
rc=$?
# What the background app builds (hack/prefetch.sh) did, when make test started them.
# Only its summary lines: the builds' own output (cargo's, a line per crate) stays in the log.
if [ -z "$beside" ] && [ -f .cluster/logs/prefetch.log ]; then
  grep -E '^[A-Za-z0-9_.-]+: (ready|failed|skipped)' .cluster/logs/prefetch.log | sed 's/^/prefetch: /'
fi
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: the test setup is broken" >&2
  exit 1
fi
exit "$rc"
