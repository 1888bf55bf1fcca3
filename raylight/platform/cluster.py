"""Ray connection: start Ray in-process (the embedded default) or join a cluster, with safe defaults.

The dashboard/job server binds 127.0.0.1 unless the user asks otherwise (anyone who reaches it can
run code). Tracker settings reach workers through ``runtime_env.env_vars``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from raylight.platform.config import RayConfig

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
        kwargs.update(
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


@lru_cache(maxsize=1)
def remote_rollout_worker_cls() -> Any:
    """``RolloutWorker`` as a Ray actor class (decorated at the edge so the class stays plain)."""
    import ray

    from raylight.platform.rollout import RolloutWorker

    return ray.remote(RolloutWorker)
