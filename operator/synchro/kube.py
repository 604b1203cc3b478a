"""Every Kubernetes API call Synchro makes, over plain dicts. Writes are server-side apply as `synchro`."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping
from typing import Any

import urllib3
from kubernetes import client, config

from synchro import api
from synchro.api import Obj

log = logging.getLogger(__name__)

_PLURALS: Mapping[tuple[str, str], str] = {
    ("v1", "Secret"): "secrets",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "Event"): "events",
    ("v1", "Pod"): "pods",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("discovery.k8s.io/v1", "EndpointSlice"): "endpointslices",
    ("coordination.k8s.io/v1", "Lease"): "leases",
    (api.API_VERSION, api.KIND): api.PLURAL,
}


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    @property
    def gone(self) -> bool:
        """The object, or its whole namespace, is on its way out: nothing is left to write to."""
        return self.status == 404 or (self.status == 403 and "because it is being terminated" in self.message)


def path(api_version: str, kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [prefix, "namespaces", namespace, _PLURALS[(api_version, kind)]]
    parts += [p for p in (name, sub) if p]
    return "/".join(parts)


def load_client(pool_size: int = 10) -> client.ApiClient:
    """In a pod: the ServiceAccount. Elsewhere: $KUBECONFIG (make run)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


class Kube:
    def __init__(self, api_client: client.ApiClient, timeout: float | tuple[float, float] = (5, 15)) -> None:
        self._api = api_client
        # Seconds to connect, and to wait for the answer: one object's read or write answers in milliseconds, so
        # 15 s is an API server that is gone or a connection that is dead (a NAT that forgot it: no RST, no FIN).
        self._timeout = timeout

    def _request(
        self,
        method: str,
        url: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj | None:
        method_, full_url, headers, _, _ = self._api.param_serialize(
            method,
            url,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(
                method_, full_url, header_params=headers, body=body, _request_timeout=self._timeout
            )
        except urllib3.exceptions.HTTPError:
            # A timeout or a dropped connection: the other pooled connections likely went the same way (the
            # operator cut off, then back), and each would cost its own timeout. The next requests connect anew.
            self._api.rest_client.pool_manager.clear()
            raise
        data = response.read()
        if response.status == 404:
            return None
        if response.status >= 400:
            try:
                message = json.loads(data).get("message", "")
            except ValueError:
                message = data.decode(errors="replace")
            raise KubeError(response.status, message)
        result: Obj = json.loads(data) if data else {}
        return result

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self._request("GET", path(api_version, kind, namespace, name))

    def endpoint_slices(self, namespace: str, service: str) -> list[Obj]:
        """The EndpointSlices of a Service: where its pods answer."""
        return self.list("discovery.k8s.io/v1", "EndpointSlice", namespace, f"kubernetes.io/service-name={service}")

    def list(self, api_version: str, kind: str, namespace: str, selector: str = "") -> list[Obj]:
        query = [("labelSelector", selector)] if selector else []
        result = self._request("GET", path(api_version, kind, namespace), query)
        return list((result or {}).get("items", []))

    def apply(self, obj: Mapping[str, Any], force: bool = True) -> Obj:
        meta = obj["metadata"]
        url = path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        query = [("fieldManager", api.FIELD_MANAGER), ("force", "true" if force else "false")]
        result = self._request("PATCH", url, query, obj, content_type="application/apply-patch+yaml")
        if result is None:
            raise KubeError(404, f"{obj['kind']} {meta['namespace']}/{meta['name']} is gone")
        return result

    def create(self, obj: Mapping[str, Any]) -> Obj | None:
        """Create, or None if it already exists (a rerun is harmless)."""
        meta = obj["metadata"]
        try:
            return self._request("POST", path(obj["apiVersion"], obj["kind"], meta["namespace"]), body=obj)
        except KubeError as e:
            if e.status == 409:
                return None
            raise

    def replace(self, obj: Mapping[str, Any]) -> Obj:
        """PUT the whole object; its metadata.resourceVersion makes it conditional (409 if it changed since)."""
        meta = obj["metadata"]
        result = self._request("PUT", path(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"]), body=obj)
        if result is None:
            raise KubeError(404, f"{obj['kind']} {meta['namespace']}/{meta['name']} is gone")
        return result

    def merge_patch(self, api_version: str, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        self._request(
            "PATCH", path(api_version, kind, namespace, name), body=patch, content_type="application/merge-patch+json"
        )

    def delete(self, api_version: str, kind: str, namespace: str, name: str, uid: str = "") -> None:
        """Delete; with a uid, only that object (not one made again under its name: 409). Gone already is done."""
        body = {"preconditions": {"uid": uid}} if uid else None
        try:
            self._request("DELETE", path(api_version, kind, namespace, name), body=body)
        except KubeError as e:
            if e.status != 409:
                raise

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        url = path(api.API_VERSION, api.KIND, namespace, name, "status")
        self._request("PATCH", url, body={"status": status}, content_type="application/merge-patch+json")

    def post_event(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        meta = involved["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "synchro"},
            "reportingComponent": "synchro.dev/operator",
            "reportingInstance": "synchro",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._request("POST", path("v1", "Event", meta["namespace"]), body=event)
        except KubeError as e:  # an event is worth a log line, never a failed reconcile
            log.warning("could not post event %s on %s: %s", reason, meta["name"], e)
