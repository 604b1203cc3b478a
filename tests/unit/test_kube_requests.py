"""kube.Kube's requests: a timed-out or dropped request empties the connection pool, so the next requests do not
each wait out their own timeout on a connection that died with it (issue 17 item 3, the black-holed operator)."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3
from kubernetes import client

from synchro.kube import Kube


class DeadPath:
    """An ApiClient whose every request times out, and whose pool says when it is emptied."""

    def __init__(self) -> None:
        self.cleared = 0
        self.timeouts: list[Any] = []
        self.rest_client = self
        self.pool_manager = self

    def clear(self) -> None:
        self.cleared += 1

    def param_serialize(self, method: str, url: str, **_: Any) -> tuple[str, str, dict[str, str], None, None]:
        return method, url, {}, None, None

    def call_api(self, method: str, url: str, _request_timeout: Any = None, **_: Any) -> Any:
        self.timeouts.append(_request_timeout)
        raise urllib3.exceptions.ReadTimeoutError(None, url, "Read timed out.")  # type: ignore[arg-type]


def test_a_timed_out_request_empties_the_pool_and_is_raised() -> None:
    dead = DeadPath()
    kube = Kube(dead)  # type: ignore[arg-type]
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        kube.get("v1", "Secret", "ns", "name")
    assert dead.cleared == 1
    assert dead.timeouts == [(5, 15)]  # connect, read: an answer that takes 15 s is a dead path


def test_the_pool_is_the_clients_own() -> None:
    api = client.ApiClient(client.Configuration())
    assert isinstance(api.rest_client.pool_manager, urllib3.PoolManager)
