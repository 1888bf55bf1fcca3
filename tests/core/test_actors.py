"""The one actor runtime (``raylight.core.actors.ActorPool``): in-process and Ray actors behind one interface,
as-completed collection, replacement of a killed or frozen actor with the current state, the failure budget.
The same pool runs rollout workers (tests/rl/test_rollout.py, tests/core/test_failures.py) and shard readers
(tests/ssl/test_shards.py)."""

from __future__ import annotations

import os
import signal

import pytest

from raylight.core.actors import ActorPool, FailureBudget
from raylight.core.errors import RaylightError
from tests.fixtures.actors import Echo


def _pool(count: int, *, remote: bool, timeout_s: float = 30.0, max_failures: int = 3) -> ActorPool:
    return ActorPool(
        Echo, lambda i, restarts: (i, restarts), count, remote=remote, cpus_per_actor=0.5, placement="pack",
        timeout_s=timeout_s, timeout_key="test.timeout_s", budget=FailureBudget("test.max_failures", max_failures),
        describe=lambda i: f"echo {i}", what="test",
    )


def test_in_process_pool_answers_in_submission_order() -> None:
    pool = _pool(2, remote=False)
    calls = [pool.submit(1, "work", 0.0, "a"), pool.submit(0, "work", 0.0, "b")]
    assert [r for _, r in pool.as_completed(calls)] == [(1, 0, None, "a"), (0, 0, None, "b")]
    assert [r[0] for r in pool.call_all("work", 0.0, None)] == [0, 1]
    pool.close()


def test_remote_results_come_as_completed_not_as_submitted(ray_session: None) -> None:
    pool = _pool(2, remote=True)
    try:
        calls = [pool.submit(0, "work", 1.5, "slow"), pool.submit(1, "work", 0.0, "fast")]
        order = [result[3] for _, result in pool.as_completed(calls)]
        assert order == ["fast", "slow"]
    finally:
        pool.close()


@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_a_killed_or_frozen_actor_is_replaced_with_the_current_state(ray_session: None, fault: str) -> None:
    """SIGKILL (dies) or SIGSTOP (frozen past the timeout): the pool starts a replacement, sends it the state last
    remembered, re-issues the call, and records the cause once against the budget."""
    pool = _pool(2, remote=True, timeout_s=2.0)
    pid = pool.get(pool.submit(0, "pid"))
    try:
        pool.remember("set_state", "weights v1")
        pool.remember("set_state", "weights v2")  # the latest wins
        call = pool.submit(0, "work", 0.5, "tag")
        os.kill(pid, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        index, restarts, state, tag = pool.get(call)
        assert (index, restarts, state, tag) == (0, 1, "weights v2", "tag")
        causes = [f["cause"] for f in pool.budget.report()]
        expected = "actor died" if fault == "kill" else "no answer within test.timeout_s=2"
        assert len(causes) == 1 and causes[0].startswith(expected), causes
        assert pool.get(pool.submit(1, "work", 0.0, None))[:2] == (1, 0)  # the other actor was left alone
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pool.close()


def test_calls_in_flight_to_a_replaced_actor_are_reissued_and_counted_once(ray_session: None) -> None:
    pool = _pool(1, remote=True)
    try:
        pid = pool.get(pool.submit(0, "pid"))
        calls = [pool.submit(0, "work", 0.3, k) for k in range(3)]
        os.kill(pid, signal.SIGKILL)
        results = sorted(r[3] for _, r in pool.as_completed(calls))
        assert results == [0, 1, 2] and len(pool.budget.failures) == 1
    finally:
        pool.close()


def test_past_the_budget_the_run_stops_with_one_line(ray_session: None) -> None:
    pool = _pool(1, remote=True, max_failures=0)
    try:
        pid = pool.get(pool.submit(0, "pid"))
        call = pool.submit(0, "work", 0.5, None)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(RaylightError, match=r"^test\.max_failures: 1 actor failures \(last: echo 0, actor died") as err:
            pool.get(call)
        assert "\n" not in str(err.value)
    finally:
        pool.close()


@pytest.mark.under_load
def test_a_frozen_actor_is_replaced_while_the_others_keep_answering(ray_session: None) -> None:
    """An asynchronous learner waits on every worker's call at once and takes whichever answers: a frozen worker must
    still be replaced once its call is overdue, although the other worker's answers keep arriving in time."""
    import time

    pool = _pool(2, remote=True, timeout_s=2.0)
    pid = pool.get(pool.submit(0, "pid"))
    try:
        os.kill(pid, signal.SIGSTOP)
        in_flight = [pool.submit(0, "work", 0.0, "frozen"), pool.submit(1, "work", 0.2, "fast")]
        tags: list[str] = []
        deadline = time.monotonic() + 60
        while "frozen" not in tags and time.monotonic() < deadline:
            call, result = next(pool.as_completed(in_flight))
            in_flight.remove(call)
            tags.append(result[3])
            if call.index == 1:
                in_flight.append(pool.submit(1, "work", 0.2, "fast"))
        assert tags[-1] == "frozen" and tags.count("fast") >= 5, tags  # ~2 s of 0.2 s answers first
        causes = [f["cause"] for f in pool.budget.report()]
        assert len(causes) == 1 and causes[0].startswith("no answer within test.timeout_s=2"), causes
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pool.close()


@pytest.mark.under_load
def test_a_slow_actor_still_using_cpu_is_not_replaced_but_a_busy_one_is_at_the_cap(ray_session: None) -> None:
    """Timeouts follow progress: a call that keeps its actor on the CPU for 2 timeouts (a machine under load) is
    waited for, not replaced (before: replaced after one timeout, its work started again); one that stays busy
    past BUSY_TIMEOUTS timeouts is given up on with its own cause; an idle silent one (frozen) after one timeout."""
    from raylight.core.actors import BUSY_TIMEOUTS

    pool = _pool(1, remote=True, timeout_s=2.0)
    try:
        assert pool.get(pool.submit(0, "spin", 4.0, "slow")) == (0, 0, None, "slow")
        assert pool.budget.failures == []
        assert pool.get(pool.submit(0, "spin", BUSY_TIMEOUTS + 30.0, "stuck"))[1] == 1  # answered by its replacement
        causes = [f["cause"] for f in pool.budget.report()]
        assert len(causes) == 1 and causes[0].startswith(f"still busy without answering after {BUSY_TIMEOUTS} x test.timeout_s=2"), causes
    finally:
        pool.close()
