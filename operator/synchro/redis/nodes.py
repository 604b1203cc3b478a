"""The I/O of an HA managed Redis's failover (the rules are redis/failover.py): ask every Sentinel which master it
follows, every Redis its ROLE and CLIENT LIST, all at once and each within a timeout; and cut connections by id.

The labels, EndpointSlices and pod deletion are the Kubernetes side: reconcile's observe and act read and write
those. Each call opens its own short-lived connection, so a frozen pod costs one timeout and
leaves nothing half-read in a pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from synchro.redis import failover
from synchro.redis.connect import client_for
from synchro.redis.failover import Client, Node, Pod, Role, Silence, World
from synchro.redis.ha import MASTER_NAME
from synchro.redis.model import Address, Credentials

TIMEOUT_S = 1.0
ONCE = Retry(NoBackoff(), 0)  # no retry: a pod that does not answer within the timeout has not answered
T = TypeVar("T")


async def _ask(address: Address, creds: Credentials, timeout: float, ask: Callable[[Any], Awaitable[T]]) -> T:
    client = client_for(*address, creds, timeout, ONCE)
    try:
        return await ask(client)
    finally:
        await client.aclose()


async def _or_none(call: Awaitable[T]) -> T | None:
    """The answer, or None for no answer (refused, timed out, an error reply)."""
    try:
        return await call
    except (RedisError, OSError):  # TimeoutError is an OSError
        return None


async def sentinel_master(address: Address, creds: Credentials, timeout: float = TIMEOUT_S) -> Address | None:
    """The master a Sentinel names, as it names it; failover.NO_MASTER when it answers that it monitors none;
    None: no answer."""

    async def named(r: Any) -> Any:
        return await r.sentinel_get_master_addr_by_name(MASTER_NAME) or failover.NO_MASTER

    reply = await _or_none(_ask(address, creds, timeout, named))
    if reply is None or reply == failover.NO_MASTER:
        return reply
    host, port = reply
    return (host.decode() if isinstance(host, bytes) else str(host)).lower(), int(port)


async def sentinel_view(
    address: Address, creds: Credentials, timeout: float = TIMEOUT_S
) -> tuple[int, int, bool] | None:
    """How many replicas a Sentinel knows up and linked, how many it lists at all (SENTINEL REPLICAS), and whether
    it is in TILT mode (INFO sentinel); None: no answer."""

    async def view(r: Any) -> tuple[Any, Any]:
        return await r.sentinel_slaves(MASTER_NAME), await r.info("sentinel")

    seen = await _or_none(_ask(address, creds, timeout, view))
    if seen is None:
        return None
    replicas, info = seen
    usable = [s for s in replicas if not s.get("is_sdown") and not s.get("is_disconnected")]
    linked = len([s for s in usable if s.get("master-link-status") == "ok"])
    return linked, len(replicas), bool(info.get("sentinel_tilt"))


async def role(address: Address, creds: Credentials, timeout: float = TIMEOUT_S) -> Role | None:
    reply = await _or_none(_ask(address, creds, timeout, lambda r: r.role()))
    return failover.parse_role(reply) if reply else None


async def clients(address: Address, creds: Credentials, timeout: float = TIMEOUT_S) -> tuple[Client, ...] | None:
    reply = await _or_none(_ask(address, creds, timeout, lambda r: r.client_list()))
    return None if reply is None else tuple(failover.client_from(fields) for fields in reply)


async def cut(address: Address, creds: Credentials, ids: Iterable[int], timeout: float = TIMEOUT_S) -> int:
    """CLIENT KILL ID, one id at a time on one connection; how many Redis closed (a gone one counts 0)."""
    client = client_for(*address, creds, timeout, ONCE)
    killed = 0
    try:
        for client_id in ids:
            try:
                killed += int(await client.client_kill_filter(_id=str(client_id)))
            except RedisError as e:
                if "No such client" not in str(e):
                    raise
    finally:
        await client.aclose()
    return killed


async def _if(pod: Pod, call: Coroutine[Any, Any, T]) -> T | None:
    """The call's answer, or no answer for a pod that cannot be reached (the call is never started)."""
    if pod.reachable:
        return await call
    call.close()
    return None


async def look(
    pods: Sequence[Pod],
    creds: Credentials,
    own_users: frozenset[str],
    endpoints: frozenset[str] | None,
    silence: Silence,
    timeout: float = TIMEOUT_S,
    **before: Any,
) -> World:
    """Every Sentinel's master, every pod's ROLE and CLIENT LIST, at once. `pods` must be every pod the
    StatefulSet should have, a missing one included (it counts as a Sentinel that did not answer: a majority is
    of all Sentinels), then the one-pod Redis being grown from, which runs no Sentinel. `before` is World's
    previous_master, last_failover, now and fallback, from status, the clock and the pass."""
    watching = [p for p in pods if p.has_sentinel]
    masters = asyncio.gather(*(_if(p, sentinel_master(p.sentinel, creds, timeout)) for p in watching))
    roles = asyncio.gather(*(_if(p, role(p.redis, creds, timeout)) for p in pods))
    lists = asyncio.gather(*(_if(p, clients(p.redis, creds, timeout)) for p in pods))
    aware = asyncio.gather(*(_if(p, sentinel_view(p.sentinel, creds, timeout)) for p in watching))
    named, answered, connections, known = await asyncio.gather(masters, roles, lists, aware)
    said = tuple(None if a is None else (failover.short_host(a[0]), a[1]) for a in named)
    domain = next((d for a in named if a is not None and (d := failover.domain_of(a[0]))), "")
    nodes = tuple(
        Node(p.name, p.names, p.ip, p.labelled, r, c, *silence.heard(p, r), uid=p.uid)
        for p, r, c in zip(pods, answered, connections, strict=True)
    )
    usable = tuple(None if k is None else k[0] for k in known)
    listed = tuple(None if k is None else k[1] for k in known)
    tilted = tuple(None if k is None else k[2] for k in known)
    return World(nodes, said, endpoints, own_users, **before, known_replicas=usable, listed_replicas=listed,
                 tilted=tilted, domain=domain)  # fmt: skip


async def ask_failover(pods: Sequence[Pod], creds: Credentials, timeout: float = TIMEOUT_S) -> str | None:
    """SENTINEL FAILOVER on the first Sentinel that takes it; the pod whose Sentinel did (None: none did). The
    caller asks only while every Sentinel that answered this pass knew every replica (failover.redis_reason): one
    that does not would find no replica to promote and abort. It passes only the pods whose Sentinel is not in TILT
    mode (switchover.Step.ask): one that is takes the request and carries it out only when it leaves TILT."""
    for pod in pods:
        if not pod.reachable:
            continue
        done = await _or_none(_ask(pod.sentinel, creds, timeout, lambda r: r.sentinel_failover(MASTER_NAME)))
        if done:
            return pod.name
    return None


async def send(
    address: Address, creds: Credentials, commands: Sequence[Sequence[str]], timeout: float = TIMEOUT_S
) -> None:
    """Send one Redis these commands in turn (ha.seed_commands, ha.heir_commands); an error raises, and the pass
    is tried again: what depends on them (a StatefulSet that logs in to the one-pod Redis, a switch to it) waits."""
    await _ask(address, creds, timeout, lambda r: _each(r, commands))


async def _each(client: Any, commands: Sequence[Sequence[str]]) -> None:
    for command in commands:
        await client.execute_command(*command)


PAUSE_MS = 5000  # the longest the apps' writes wait while the one-pod Redis takes over
CATCH_UP_S = 2.0  # how long the one-pod Redis has to process the master's last writes, paused


async def take_over(
    master: Address,
    heir: Address,
    sentinels: Sequence[Address],
    creds: Credentials,
    undo: Sequence[Sequence[str]],
    timeout: float = TIMEOUT_S,
) -> str | None:
    """The switch to the one-pod Redis (redis/shrink.py): the master's writes paused, the heir given until it has
    processed every one, the master taken out of the Sentinels' hands (so that none turns the heir back into a
    replica), the heir promoted, the old master made its replica (so it refuses writes from then on), the pause
    lifted. None when done, else why not, the master's writes resumed: the next pass tries again.

    A Sentinel that does not answer SENTINEL REMOVE would still monitor the master, and could turn the promoted
    heir back into a replica: then nothing is promoted, and every Sentinel is sent `undo` (ha.monitor_commands of
    the master), so that those which did remove it monitor it again."""
    old: Any = client_for(*master, creds, timeout, ONCE)  # Any: redis-py's execute_command is untyped
    new: Any = client_for(*heir, creds, timeout, ONCE)
    try:
        await old.execute_command("CLIENT", "PAUSE", str(PAUSE_MS), "WRITE")
        target = failover.parse_role(await old.role()).offset  # stable while paused: no write, no replication PING
        deadline = asyncio.get_running_loop().time() + CATCH_UP_S
        while (now := failover.parse_role(await new.role())).offset < target or not now.link_up:
            if asyncio.get_running_loop().time() > deadline:
                await old.execute_command("CLIENT", "UNPAUSE")
                return f"the one-pod Redis is {target - now.offset} bytes behind the master after {CATCH_UP_S:.0f} s"
            await asyncio.sleep(0.02)
        removed = await asyncio.gather(*(_or_none(_ask(s, creds, timeout, _remove)) for s in sentinels))
        if None in removed:
            await asyncio.gather(*(_or_none(_ask(s, creds, timeout, lambda r: _monitor(r, undo))) for s in sentinels))
            await old.execute_command("CLIENT", "UNPAUSE")
            missed = removed.count(None)
            return f"{missed} of {len(sentinels)} Sentinels did not answer SENTINEL REMOVE: they all monitor it again"
        await new.execute_command("REPLICAOF", "NO", "ONE")
        await old.execute_command("REPLICAOF", heir[0], str(heir[1]))
        await old.execute_command("CLIENT", "UNPAUSE")
    finally:
        await asyncio.gather(old.aclose(), new.aclose())
    return None


async def _remove(client: Any) -> bool:
    """SENTINEL REMOVE; True also where it monitors nothing already (a switch cut short after its REMOVE)."""
    try:
        await client.execute_command("SENTINEL", "REMOVE", MASTER_NAME)
    except ResponseError as e:
        if "No such master" not in str(e):
            raise
    return True


async def demote(addresses: Sequence[Address], heir: Address, creds: Credentials, timeout: float = TIMEOUT_S) -> None:
    """Make each of these Redis a replica of the one-pod Redis (a master left by a switch cut short): from then
    on it refuses the apps' writes. One that does not answer is skipped: its pod is being deleted."""
    replicaof = ("REPLICAOF", heir[0], str(heir[1]))
    await asyncio.gather(*(_or_none(_ask(a, creds, timeout, lambda r: _each(r, [replicaof]))) for a in addresses))


async def rescue(
    replicas: Sequence[Address],
    monitor: Sequence[Sequence[Sequence[str]]],
    sentinels: Sequence[Address],
    creds: Credentials,
    timeout: float = TIMEOUT_S,
) -> int | None:
    """Carry out failover.rescue: of `replicas`, the one whose replication offset is highest (INFO replication)
    promoted, the others made its replicas, and every Sentinel that answers sent that one's `monitor` commands
    (ha.monitor_commands). Which one was promoted (its index); None: no replica answered, nothing was done."""
    offsets = await asyncio.gather(*(_or_none(_ask(a, creds, timeout, _offset)) for a in replicas))
    answered = [(offset, i) for i, offset in enumerate(offsets) if offset is not None]
    if not answered:
        return None
    _, best = max(answered)
    promote = replicas[best]
    await _ask(promote, creds, timeout, lambda r: _each(r, [("REPLICAOF", "NO", "ONE")]))
    follow = [("REPLICAOF", promote[0], str(promote[1]))]
    others = [a for i, a in enumerate(replicas) if i != best]
    await asyncio.gather(*(_or_none(_ask(a, creds, timeout, lambda r: _each(r, follow))) for a in others))
    told = monitor[best]
    await asyncio.gather(*(_or_none(_ask(s, creds, timeout, lambda r: _monitor(r, told))) for s in sentinels))
    return best


async def _offset(client: Any) -> int:
    """A replica's replication offset, its link up or not (ROLE says -1 while it is down)."""
    return int((await client.info("replication"))["master_repl_offset"])


async def _monitor(client: Any, commands: Sequence[Sequence[str]]) -> None:
    for command in commands:
        try:
            await client.execute_command(*command)
        except ResponseError as e:
            if "No such master" not in str(e):  # a REMOVE where it is gone already
                raise


async def fence(verdict: failover.Verdict, pods: Sequence[Pod], creds: Credentials, timeout: float = TIMEOUT_S) -> int:
    """Carry out the verdict's cuts; how many connections were closed. Nothing while it waits for the Service."""
    if verdict.wait_for_endpoints:
        return 0
    where = {p.name: p.redis for p in pods}
    # A pod that stops answering meanwhile counts 0 and is cut on the next pass: it must not fail the whole pass.
    done = await asyncio.gather(*(_or_none(cut(where[c.pod], creds, c.ids, timeout)) for c in verdict.cuts))
    return sum(n or 0 for n in done)
