"""Ray connection: start Ray in-process (the embedded default) or join a cluster, with safe defaults.

The dashboard/job server binds 127.0.0.1 unless the user asks otherwise (anyone who reaches it can
run code). Tracker settings reach workers through ``runtime_env.env_vars``.
"""

from __future__ import annotations

import os
from typing import Any

from raylight.core.config import ExperimentConfig, RayConfig
from raylight.core.errors import ConfigError

# Environment variables that must be the same in the driver and in every worker process.
_FORWARDED_ENV = ("WANDB_MODE", "WANDB_DIR", "WANDB_SILENT", "PYTHONPATH", "RAY_AUTH_MODE")


def init_ray(cfg: RayConfig) -> None:
    """Start or join Ray once per process; later calls are no-ops."""
    import ray

    if ray.is_initialized():
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
        )
    else:
        kwargs["address"] = cfg.address
    ray.init(**kwargs)


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def check_resources_fit(cfg: ExperimentConfig, actor_cpus_per_rank: float) -> None:
    """Refuse up front (one line with the numbers) when the trainer ranks and the task's actors cannot
    all be placed: Ray would otherwise wait for resources that never come."""
    import ray

    ranks = cfg.trainer.num_workers
    trainer_cpus = ranks * cfg.trainer.cpus_per_worker if ranks > 1 else 0.0  # one rank runs in this process
    need = trainer_cpus + ranks * actor_cpus_per_rank
    have = float(ray.cluster_resources().get("CPU", 0.0))
    if need > have + 1e-9:
        raise ConfigError(
            f"resources: this run needs {need:g} CPUs ({ranks} trainer rank(s) x {cfg.trainer.cpus_per_worker:g} + "
            f"{ranks} x {actor_cpus_per_rank:g} for actors) but the Ray cluster has {have:g}; lower trainer.num_workers, "
            "the actor counts or their CPUs per actor, or join a bigger cluster"
        )


def remote_class(cls: type) -> Any:
    """``cls`` as a Ray actor class, decorated at the edge so the class itself stays plain (cached per class)."""
    import ray

    if cls not in _REMOTE_CLASSES:
        _REMOTE_CLASSES[cls] = ray.remote(cls)
    return _REMOTE_CLASSES[cls]


_REMOTE_CLASSES: dict[type, Any] = {}


def stop_actors(actors: list[Any], grace_s: float = 5.0) -> None:
    """End actors gracefully (they finish their current call and exit), killing only those that do not
    exit within ``grace_s``. Killing freshly used actors at once raced with the raylet's scheduling
    (ray-project/ray#17369): in a long test session a later actor of the same class then never ran its calls."""
    if not actors:
        return
    import ray

    refs = [a.__ray_terminate__.remote() for a in actors]
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=grace_s)
    stuck = {r for r in pending}
    for actor, ref in zip(actors, refs, strict=True):
        if ref in stuck:
            ray.kill(actor)
