#!/usr/bin/env bash
# make test's pytest runs: tests/integration, and tests/unit beside it in a pytest of its own.
# The unit tests need no cluster and mostly wait on Redis and Sentinel timers (measured: 19 s of CPU in 178 s), so
# beside the integration tests, which mostly wait too, they add almost nothing to the wall time; before them they
# added their whole length. Their output is kept in a log and printed after the integration tests'. The exit code
# is the first failure's of the two.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cluster/logs
log=.cluster/logs/unit-tests.log
PYTEST_BESIDE=1 bash hack/pytest.sh -p no:cacheprovider tests/unit >"$log" 2>&1 &
unit=$!
trap 'kill "$unit" 2>/dev/null' INT TERM
bash hack/pytest.sh tests/integration
integration=$?
wait "$unit"
rc=$?
echo "---- tests/unit, run beside tests/integration (exit $rc; log $log) ----"
cat "$log"
[ "$integration" != 0 ] && exit "$integration"
exit "$rc"
