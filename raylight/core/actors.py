"""The one actor runtime under every source of data: rollout workers, shard readers and text readers.

``ActorPool`` runs N copies of a plain class, as Ray actors (one placement-group bundle each) or in the
learner's process (``num_workers: 0``), behind one interface:
    call = pool.submit(i, "method", *args)        per actor, any number in flight
    for call, result in pool.as_completed(calls)  results in completion order, not submission order
One restart policy for every domain: Ray never restarts an actor by itself (a Ray restart re-runs the
constructor silently and hides the crash). An actor that dies, or does not answer within ``timeout_s``
(frozen, its node lost), is killed and replaced by a fresh one; the pool re-sends the state the owner
registered with ``remember`` (a rollout worker's current policy) and re-issues every call that was in
flight to it. Each replacement counts against a ``FailureBudget`` that ends the run with one line.

Timeouts follow progress, not the wall clock alone: an overdue actor on the driver's node whose process is
still using CPU is slow (a machine under load: Ray workers run niced behind every other process), not frozen,
so its call's clock starts again, up to ``BUSY_TIMEOUTS`` timeouts in all. Replacing a slow actor only
restarts its work on a machine that is already short of CPU. A frozen (SIGSTOPped, deadlocked) actor uses no
CPU and is replaced after one timeout, as is any actor on another node (its process cannot be watched).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from raylight.core.errors import RaylightError

STARTUP_TIMEOUT_S = 120.0  # an actor's process start and construction, apart from its calls' own timeouts
BUSY_TIMEOUTS = 5  # an actor still using CPU gets this many timeouts in all before it counts as stuck
BUSY_CPU_S = 0.05  # CPU seconds over one timeout that count as progress (an idle Ray worker uses ~0)


@dataclass(frozen=True)
class ActorFailure:
    """One actor given up on (dead, or silent past its timeout) and replaced."""

    actor: str
    cause: str


@dataclass
class FailureBudget:
    """Actor failures over the whole run against one config key's limit (``rollout.max_failures``,
    ``data.max_failures``): each is recorded with its cause for ``summary.json``; one past the
    limit stops the run with one line."""

    key: str
    limit: int
    failures: list[ActorFailure] = field(default_factory=list)

    def record(self, actor: str, cause: str) -> None:
        self.failures.append(ActorFailure(actor, cause))
        if len(self.failures) > self.limit:
            raise RaylightError(
                f"{self.key}: {len(self.failures)} actor failures (last: {actor}, {cause}); the run stops (raise {self.key} to tolerate more)"
            )

    def report(self) -> list[dict[str, str]]:
        return [vars(f) for f in self.failures]


def remote_class(cls: type) -> Any:
    """``cls`` as a Ray actor class, decorated at the edge so the class itself stays plain (cached per class)."""
    import ray

    if cls not in _REMOTE_CLASSES:
        _REMOTE_CLASSES[cls] = ray.remote(cls)
    return _REMOTE_CLASSES[cls]


_REMOTE_CLASSES: dict[type, Any] = {}


def wait_ready(actors: list[Any], what: str, timeout_s: float = STARTUP_TIMEOUT_S) -> list[tuple[str, int]]:
    """Block until the actors are constructed, so call timeouts never include process start-up; one line if they
    do not start (a cluster short of CPUs) and the construction error if they fail. Returns each actor's
    (node id, pid), so the pool can watch the CPU use of those on the driver's node."""
    import ray

    refs = [a.__ray_call__.remote(_whereabouts) for a in actors]  # runs once the constructor has
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    if len(ready) < len(refs):
        raise RaylightError(f"{what}: {len(refs) - len(ready)} actor(s) did not start within {timeout_s:g} s (is the cluster short of CPUs?)")
    return ray.get(refs)


class ActorPlacement:
    """One placement-group bundle per actor, reserved at once: ``spread`` puts them on different nodes where
    it can (``pack`` on as few as possible); all or nothing, so a run never half-starts its actors.

    Inside an enclosing placement group (a Ray Tune trial, a Ray Train worker) actors are scheduled as Ray
    does by default instead: the trial's group already reserved their CPUs.
    """

    def __init__(self, count: int, cpus: float, strategy: str, what: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        import ray

        self.group: Any = None
        if count == 0 or cpus <= 0 or ray.get_runtime_context().get_placement_group_id() is not None:
            return
        from ray.util.placement_group import placement_group, remove_placement_group

        self.group = placement_group([{"CPU": cpus}] * count, strategy=strategy.upper())
        ready, _ = ray.wait([self.group.ready()], timeout=timeout_s)
        if not ready:
            remove_placement_group(self.group)
            self.group = None
            raise RaylightError(
                f"{what}: {count} actors x {cpus:g} CPUs could not be placed ({strategy}) within {timeout_s:g} s; "
                f"the cluster has {ray.available_resources().get('CPU', 0.0):g} CPUs free"
            )

    def options(self, index: int) -> dict[str, Any]:
        """``.options(...)`` for actor ``index``: its bundle (a replacement reuses the bundle of the actor it replaces)."""
        if self.group is None:
            return {}
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return {"scheduling_strategy": PlacementGroupSchedulingStrategy(self.group, placement_group_bundle_index=index)}

    def remove(self) -> None:
        if self.group is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self.group)
            self.group = None


def stop_actors(actors: list[Any], grace_s: float = 5.0) -> None:
    """End actors gracefully (they finish their current call and exit), killing only those that do not
    exit within ``grace_s``. Killing freshly used actors at once raced with the raylet's scheduling
    (ray-project/ray#17369): in a long test session a later actor of the same class then never ran its calls."""
    if not actors:
        return
    import ray

    # No retries: an actor made with max_task_retries would count its own intentional exit as a failed
    # __ray_terminate__ and print "Task ...__ray_terminate__ failed. There are 3 retries remaining" per actor.
    refs = [a.__ray_terminate__.options(max_task_retries=0).remote() for a in actors]
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=grace_s)
    stuck = set(pending)
    for actor, ref in zip(actors, refs, strict=True):
        if ref in stuck:
            ray.kill(actor)


@dataclass
class Call:
    """One request in flight to actor ``index``, with what is needed to re-issue it to a replacement."""

    index: int
    method: str
    args: tuple[Any, ...]
    ref: Any = None  # Ray ObjectRef (remote pools)
    actor: Any = None  # the handle it went to: a call still in flight to a replaced actor is re-issued, not counted again
    result: Any = None  # in-process pools: the answer, computed at submit
    waiting_since: float | None = None  # when the owner first waited for it (monotonic): its timeout runs from there
    first_waited: float | None = None  # when its current attempt was first waited for (busy extensions do not move it)
    cpu_mark: float | None = None  # its actor's CPU seconds when the current timeout started (None: not watchable)


def _whereabouts(actor: Any) -> tuple[str, int]:
    """(node id, pid) of the actor's process: run inside it through ``__ray_call__``."""
    import os

    import ray

    return ray.get_runtime_context().get_node_id(), os.getpid()


def _cpu_seconds(pid: int | None) -> float | None:
    """CPU time a local process has used so far; None when it cannot be read (gone, no psutil)."""
    if pid is None:
        return None
    try:
        import psutil  # Ray ships it (``import ray`` puts its copy on the path)

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except Exception:  # noqa: BLE001 - unreadable: the wall clock alone decides
        return None


ArgsFor = Callable[[int, int], tuple[Any, ...]]  # (actor index, replacement count) -> constructor arguments


class ActorPool:
    """``count`` instances of ``cls`` built as ``cls(*args_for(index, restarts))``; remote (Ray actors) or in-process.

    ``describe(index)`` names an actor in failure records (``"rollout worker 3"``); ``timeout_s`` bounds how long
    a call may stay unanswered once the owner waits for it (``timeout_key`` names the config key that set it).
    """

    def __init__(
        self,
        cls: type,
        args_for: ArgsFor,
        count: int,
        *,
        remote: bool,
        cpus_per_actor: float,
        placement: str,
        timeout_s: float,
        timeout_key: str,
        budget: FailureBudget,
        describe: Callable[[int], str],
        what: str,
    ) -> None:
        self.cls = cls
        self.args_for = args_for
        self.count = count
        self.remote = remote
        self.cpus_per_actor = cpus_per_actor
        self.timeout_s = timeout_s
        self.budget = budget
        self.describe = describe
        self.what = what
        self.timeout_key = timeout_key
        self._state: tuple[str, tuple[Any, ...]] | None = None  # what a replacement must receive first
        self._placement: ActorPlacement | None = None
        self.actors: list[Any] = []
        self.restarts = [0] * count
        self.pids: list[int | None] = [None] * count  # actors on the driver's node, whose CPU use can be watched
        if not remote:
            self.actors = [cls(*args_for(i, 0)) for i in range(count)]
            return
        self._placement = ActorPlacement(count, cpus_per_actor, placement, what)
        self.actors = [self._spawn(i) for i in range(count)]
        self._locate(range(count), wait_ready(self.actors, what))

    def _locate(self, indices: Iterable[int], where: list[tuple[str, int]] | None) -> None:
        """Note the pids of actors that run on this node (the others' progress cannot be watched)."""
        if not where:
            return
        import ray

        here = ray.get_runtime_context().get_node_id()
        for i, (node, pid) in zip(indices, where, strict=True):
            self.pids[i] = pid if node == here else None

    def _spawn(self, index: int) -> Any:
        assert self._placement is not None
        # max_restarts=0: raylight replaces actors itself (``_replace``), with the current state.
        return (
            remote_class(self.cls)
            .options(num_cpus=self.cpus_per_actor, max_restarts=0, max_task_retries=0, **self._placement.options(index))
            .remote(*self.args_for(index, self.restarts[index]))
        )

    def remember(self, method: str, *args: Any) -> None:
        """The state a replacement actor receives before its re-issued calls: ``method(*args)``, the latest one wins
        (a rollout worker's current policy snapshot; shard readers need none, their requests are self-contained)."""
        self._state = (method, args)

    def submit(self, index: int, method: str, *args: Any) -> Call:
        """``actor[index].method(*args)``: a Ray call in flight, or the answer itself in-process."""
        call = Call(index, method, args)
        if self.remote:
            self._send(call)
        else:
            call.result = getattr(self.actors[index], method)(*args)
        return call

    def _send(self, call: Call) -> None:
        call.waiting_since = call.first_waited = call.cpu_mark = None
        call.actor = self.actors[call.index]
        call.ref = getattr(call.actor, call.method).remote(*call.args)

    def as_completed(self, calls: Iterable[Call]) -> Iterator[tuple[Call, Any]]:
        """Yield ``(call, result)`` as each answer arrives (in-process: in submission order). A call whose actor
        died, or that is still unanswered ``timeout_s`` after the owner first waited for it, is re-issued to a
        replacement -- also while other calls keep answering (an asynchronous learner waits on many calls at once)."""
        pending = list(calls)
        if not self.remote:
            yield from ((c, c.result) for c in pending)
            return
        import ray
        from ray.exceptions import RayActorError

        while pending:
            self._reissue_overdue(pending, time.monotonic())
            now = time.monotonic()
            for c in pending:  # a call's clock starts when the owner first waits for it (re-issued calls: again)
                if c.waiting_since is None:
                    c.waiting_since = c.first_waited = now
                    c.cpu_mark = _cpu_seconds(self.pids[c.index])
            by_ref = {c.ref: c for c in pending}
            first_deadline = min(now if c.waiting_since is None else c.waiting_since for c in pending) + self.timeout_s
            ready, _ = ray.wait(list(by_ref), num_returns=1, timeout=max(0.0, first_deadline - time.monotonic()))
            if not ready:
                continue  # the next round re-issues what is overdue
            call = by_ref[ready[0]]
            try:
                result = ray.get(ready[0])
            except RayActorError as exc:
                self._reissue(call, f"actor died ({type(exc).__name__})")
                continue
            pending.remove(call)
            yield call, result

    def _reissue_overdue(self, pending: list[Call], now: float) -> None:
        overdue = [c for c in pending if c.waiting_since is not None and now - c.waiting_since >= self.timeout_s]
        if not overdue:
            return
        import ray

        _, unanswered = ray.wait([c.ref for c in overdue], num_returns=len(overdue), timeout=0)
        if not unanswered:
            return
        free, total = ray.available_resources().get("CPU", 0.0), ray.cluster_resources().get("CPU", 0.0)
        cause = f"no answer within {self.timeout_key}={self.timeout_s:g} ({free:g} of {total:g} cluster CPUs free)"
        for c in overdue:
            if c.ref not in unanswered:
                continue
            cpu = _cpu_seconds(self.pids[c.index])
            busy = cpu is not None and c.cpu_mark is not None and cpu - c.cpu_mark >= BUSY_CPU_S
            if busy and now - (c.first_waited or now) < BUSY_TIMEOUTS * self.timeout_s:
                c.waiting_since, c.cpu_mark = now, cpu  # slow but working: another timeout from now
                continue
            self._reissue(c, cause if not busy else f"still busy without answering after {BUSY_TIMEOUTS} x {self.timeout_key}={self.timeout_s:g}")

    def get(self, call: Call) -> Any:
        """The result of one call (replacing its actor as ``as_completed`` does)."""
        return next(self.as_completed([call]))[1]

    def call_all(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every actor, results in actor order."""
        calls = [self.submit(i, method, *args) for i in range(self.count)]
        results = dict((c.index, r) for c, r in self.as_completed(calls))
        return [results[i] for i in range(self.count)]

    def _reissue(self, call: Call, cause: str) -> None:
        """Replace the call's actor (unless an earlier failure already did) and send the call again."""
        if call.actor is self.actors[call.index]:
            self._replace(call.index, cause)
        self._send(call)

    def _replace(self, index: int, cause: str) -> None:
        import ray

        self.budget.record(self.describe(index), cause)
        ray.kill(self.actors[index], no_restart=True)
        self.restarts[index] += 1
        self.actors[index] = self._spawn(index)
        self._locate([index], wait_ready([self.actors[index]], self.what))
        if self._state is not None:
            method, args = self._state
            getattr(self.actors[index], method).remote(*args)  # actor calls run in order: before the re-issued ones

    def close(self) -> None:
        if self.remote and self.actors:
            stop_actors(self.actors)
        elif not self.remote:
            for actor in self.actors:
                close = getattr(actor, "close", None)
                if close is not None:
                    close()
        self.actors = []
        if self._placement is not None:
            self._placement.remove()
            self._placement = None
