"""The operator-log check that fails the session on an RBAC refusal (conftest's `operator` fixture), without a
cluster: it must catch each form a refusal takes and nothing else."""

from __future__ import annotations

from logcheck import denied_lines

REFUSALS = [
    "2026-12-04 10:41:07,156 ERROR kopf.objects: (403)\nReason: Forbidden\n",
    'ERROR synchro: pods is forbidden: User "system:serviceaccount:synchro-system:synchro" cannot list resource\n',
    "WARNING synchro: apply of Deployment web failed: 403 Forbidden\n",
]
NOT_REFUSALS = [
    "2026-12-04 10:41:07,156 INFO kopf.objects: applied Deployment b17 (config 403f1716c9e3f1cf, replicas 1)\n",
    "INFO synchro: applied Deployment web (config 9a403bc2, replicas 2)\n",
    "2026-12-04 12:12:52,403 INFO kopf.objects: Handler 'release' succeeded.\n",  # the milliseconds
    "2026-12-04 12:12:52.403 INFO kopf.objects: Deletion is processed: 1 succeeded; 0 failed.\n",
    'WARNING synchro: namespaces "t-1" is being terminated: 403 Forbidden\n',
]


def test_each_refusal_is_caught_and_a_403_in_a_config_hash_or_a_timestamp_is_not() -> None:
    assert denied_lines(REFUSALS) == REFUSALS
    assert denied_lines(NOT_REFUSALS) == []
