"""Ray connection: start Ray in-process (the embedded default) or join a cluster, with safe defaults.

An in-process Ray listens on 127.0.0.1 only (GCS, raylet, workers, agents, metrics, dashboard: anyone
who reaches them can run code) unless ``ray.bind_host: node``; it is shut down by a watchdog process
if this one dies without doing it (``raylight.core.watchdog``). Joining a cluster is explicit and gives
up after ``ray.connect_timeout_s`` with one line. Tracker settings reach workers through ``runtime_env.env_vars``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from raylight.core import signals
from raylight.core.config import ExperimentConfig, RayConfig
from raylight.core.errors import ConfigError

# Environment variables that must be the same in the driver and in every worker process.
_FORWARDED_ENV = ("WANDB_MODE", "WANDB_DIR", "WANDB_SILENT", "PYTHONPATH", "RAY_AUTH_MODE")


def in_ray_job() -> bool:
    """True in the driver of a Ray job (``raylight submit`` or ``ray job submit -- raylight train ...``)."""
    return "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ


def init_ray(cfg: RayConfig) -> None:
    """Start or join Ray once per process; later calls are no-ops.

    A Ray job's driver joins the job's cluster (unless ``ray.address`` names another) and leaves the
    runtime env to the job's (working_dir, env_vars): Ray refuses to merge a second one."""
    import ray

    if ray.is_initialized():
        return
    if in_ray_job():
        with keep_loopback_ip():  # a job on a loopback cluster gets RAY_ADDRESS=127.0.0.1:P: Ray would dial the interface IP
            ray.init(address=cfg.address or "auto", log_to_driver=True, configure_logging=True, logging_level=logging.WARNING)
        signals.reinstall()
        return
    env_vars = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
    cwd = os.getcwd()
    # Workers must import user env modules ('module:Class') from the directory the run started in.
    env_vars["PYTHONPATH"] = os.pathsep.join(p for p in (cwd, env_vars.get("PYTHONPATH", "")) if p)
    kwargs: dict[str, Any] = {
        "runtime_env": {"env_vars": env_vars},
        "log_to_driver": True,
        "configure_logging": True,
        "logging_level": "WARNING",
    }
    if cfg.address is None:
        # "local" always starts a fresh instance: never RAY_ADDRESS, never a stale or someone else's
        # cluster found through Ray's current-cluster file. Joining a cluster is explicit (ray.address).
        kwargs.update(
            address="local",
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            include_dashboard=cfg.include_dashboard,
            dashboard_host=cfg.dashboard_host,
            object_store_memory=cfg.object_store_memory,
            _system_config={"worker_niceness": cfg.worker_niceness},
        )
        from raylight.core.watchdog import start_watchdog

        start_watchdog()  # before ray.init: a kill -9 during start-up must not leave agents and workers behind
        with _loopback_node(cfg.bind_host == "127.0.0.1", kwargs), _own_process_group():
            ray.init(**kwargs)
        signals.reinstall()
        return
    address = resolve_auto_address() if cfg.address == "auto" else cfg.address
    check_reachable(address, cfg.connect_timeout_s)
    kwargs["address"] = address
    with tempfile.TemporaryFile(mode="w+b") as captured:
        try:
            # keep_loopback_ip: Ray would turn 127.0.0.1:P into the interface address, where a loopback node does not listen.
            with _stderr_to(captured), keep_loopback_ip():  # Ray's C++ client logs one warning per retry (~20 lines)
                ray.init(**kwargs)
        except (ConnectionError, TimeoutError) as exc:
            captured.seek(0)
            if b"InvalidAuthToken" in captured.read():
                raise ConfigError(
                    f"ray.address: the cluster at {cfg.address} requires token authentication: set RAY_AUTH_MODE=token and its "
                    "token (RAY_AUTH_TOKEN, or the file ~/.ray/auth_token) in this shell"
                ) from None
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ConfigError(f"ray.address: could not join the cluster at {cfg.address} ({type(exc).__name__}: {first})") from None
        captured.seek(0)
        os.write(2, captured.read())  # joined: whatever Ray said goes to the terminal after all
    signals.reinstall()


@contextlib.contextmanager
def _stderr_to(file: Any) -> Iterator[None]:
    """Point file descriptor 2 (Python's and C++'s stderr alike) at ``file`` for the duration."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _loopback_node(loopback: bool, kwargs: dict[str, Any]) -> Iterator[None]:
    """Make an in-process Ray's node IP 127.0.0.1, so every Ray server binds loopback only."""
    if not loopback:
        yield
        return
    kwargs["_node_ip_address"] = "127.0.0.1"
    with keep_loopback_ip():
        yield


@contextlib.contextmanager
def keep_loopback_ip() -> Iterator[None]:
    """Let a node IP of 127.0.0.1 stay 127.0.0.1 while Ray starts a node (``ray.init``, ``ray start``).

    Ray (2.60) turns a loopback node IP (``_node_ip_address``, ``ray start --node-ip-address``) into the
    machine's interface address and then binds its gRPC servers, agents and metrics endpoints there or on
    all interfaces; with the node IP truly 127.0.0.1 they bind 127.0.0.1. There is no public switch, so the
    private resolver is bypassed for the duration only; ``tests/core/test_loopback.py`` lists the sockets of
    every cluster raylight and its tests start and fails if a Ray upgrade undoes it.
    """
    from ray._private import services

    original = getattr(services, "resolve_ip_for_localhost", None)
    if original is not None:
        services.resolve_ip_for_localhost = lambda host: host
    try:
        yield
    finally:
        if original is not None:
            services.resolve_ip_for_localhost = original


@contextlib.contextmanager
def _own_process_group() -> Iterator[None]:
    """Start an in-process Ray's servers (and so its agents and workers) in a session of their own.

    A signal to the terminal's or ``timeout``'s process group (Ctrl-C, SIGTERM) then reaches the driver
    only: it writes the final checkpoint and shuts Ray down itself. Before, a group SIGTERM killed the GCS
    at once and the driver hung 60 s in Ray's reconnect loop, then exited 1 with no summary (issue 22).
    Ray blocks SIGINT in its servers but not SIGTERM, and offers no switch, so its process launcher is
    wrapped for the duration of ``ray.init``; a ``kill -9`` of the driver is the watchdog's to clean up.
    """
    from ray._private import services

    original = services.ConsolePopen

    class _SessionPopen(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if sys.platform != "win32":
                kwargs["start_new_session"] = True
            super().__init__(*args, **kwargs)

    services.ConsolePopen = _SessionPopen  # type: ignore[misc]
    try:
        yield
    finally:
        services.ConsolePopen = original  # type: ignore[misc]


def resolve_auto_address() -> str:
    """``ray.address: auto`` as one named cluster, said on stderr: never a silent join of whatever Ray runs here.

    ``RAY_ADDRESS`` (the user's own choice) wins, as in Ray. Otherwise Ray would take the cluster its
    current-cluster file names, which may be another user's or another run's (seen: a second engineer's
    instance joined silently); raylight joins only when exactly one Ray cluster runs on this machine and
    refuses in one line, naming them, when there are several.
    """
    from ray._private import services

    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        print(f"raylight: ray.address=auto: joining the Ray cluster at {env} (from RAY_ADDRESS)", file=sys.stderr)
        return env
    try:
        running = sorted(services.find_gcs_addresses())
    except Exception:  # noqa: BLE001 - the process scan failed: treat as none found
        running = []
    if not running:
        raise ConfigError("ray.address: 'auto' found no running Ray cluster on this machine (start one with "
                          "`python -m raylight.core.ray_node start --head`, or leave ray.address unset to run Ray in-process)")
    if len(running) > 1:
        raise ConfigError(f"ray.address: 'auto' is ambiguous: {len(running)} Ray clusters run on this machine ({', '.join(running)}); "
                          "name one with ray.address=HOST:PORT")
    print(f"raylight: ray.address=auto: joining the Ray cluster at {running[0]} (the only one running on this machine)", file=sys.stderr)
    return running[0]


def check_reachable(address: str, timeout_s: float) -> None:
    """One line instead of ray.init's minutes of retries when nothing answers at the cluster's address."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"ray.address: nothing answered at {address} within ray.connect_timeout_s={timeout_s:g} "
            f"({exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}); is the cluster up (`ray status`) and the port reachable?"
        ) from None


_START_DIR: str | None = None


def remember_working_dir() -> None:
    """Note the process's working directory by path (see ``reenter_working_dir``)."""
    global _START_DIR
    try:
        _START_DIR = os.path.abspath(os.getcwd())
    except FileNotFoundError:
        _START_DIR = None


def reenter_working_dir() -> None:
    """A Ray job's driver runs inside Ray's unpacked copy of the working dir, and Ray can replace that copy
    while the driver runs (seen with two `ray start` nodes on one machine: the second node's runtime-env
    agent unpacked it again when a rollout actor landed there). The path is back, but the process sits in
    the deleted directory and ``os.getcwd()`` raises -- wandb.init then failed the run. Step back in by path."""
    try:
        os.getcwd()
    except FileNotFoundError:
        if _START_DIR is not None and os.path.isdir(_START_DIR):
            os.chdir(_START_DIR)


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def check_resources_fit(cfg: ExperimentConfig, actor_cpus_per_rank: float) -> None:
    """Refuse up front (one line with the numbers) when the trainer ranks and the task's actors cannot
    all be placed: Ray would otherwise wait for resources that never come."""
    import ray

    ranks = cfg.trainer.num_workers
    trainer_cpus = ranks * cfg.trainer.cpus_per_worker if cfg.trainer.under_ray_train else 0.0  # else one rank runs in this process
    need = trainer_cpus + ranks * actor_cpus_per_rank
    have = float(ray.cluster_resources().get("CPU", 0.0))
    if need > have + 1e-9:
        raise ConfigError(
            f"resources: this run needs {need:g} CPUs ({ranks} trainer rank(s) x {cfg.trainer.cpus_per_worker:g} + "
            f"{ranks} x {actor_cpus_per_rank:g} for actors) but the Ray cluster has {have:g}; lower trainer.num_workers, "
            "the actor counts or their CPUs per actor, or join a bigger cluster"
        )
    from raylight.core.trainer import resolve_accelerator

    if ranks > 1 and resolve_accelerator(cfg) == "gpu":  # each DDP rank needs a GPU of its own (NCCL refuses to share one)
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        if ranks * cfg.trainer.devices > gpus + 1e-9:
            raise ConfigError(
                f"resources: trainer.num_workers={ranks} GPU ranks need {ranks * cfg.trainer.devices} GPUs but the Ray cluster has "
                f"{gpus:g}; NCCL cannot run two ranks on one GPU: lower trainer.num_workers or join a cluster with more GPUs"
            )
