"""Ray jobs: ``raylight submit`` packages a config and the working directory as a Ray job (Job Submission
SDK), ``raylight jobs`` lists, follows and stops them.

The job's driver runs ``raylight train`` on the head node and joins the cluster (``ray.address=auto``),
never an in-process Ray. Its run directory goes to a durable ``run_root`` -- the one given, if absolute,
else ``~/raylight-runs`` on the head node -- never into Ray's temporary copy of the working directory,
which is deleted when the job ends.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from raylight.core.errors import ConfigError, RaylightError

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
AGENT_WAIT_S = 60.0
DURABLE_RUN_ROOT = "~/raylight-runs"
# Never uploaded with the working directory: outputs, environments, VCS data.
UPLOAD_EXCLUDES = ["runs/", ".venv/", "venv/", ".git/", "wandb/", "__pycache__/", "*.ckpt", "benchmarks/results/"]
# Forwarded to the job's driver when set here (tracking and auth settings; never API keys).
FORWARDED_ENV = ("WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "RAY_AUTH_MODE")


def default_address() -> str:
    return os.environ.get("RAY_API_SERVER_ADDRESS") or DEFAULT_ADDRESS


def client(address: str) -> Any:
    """A Job Submission client, or one line saying why the job server cannot be used."""
    from ray.job_submission import JobSubmissionClient

    if "://" not in address and re.fullmatch(r"\[?[\w.:-]+\]?:\d+", address):
        # The job server speaks HTTP; without a scheme Ray's client took host:port for a GCS and retried for 55 s.
        address = f"http://{address}"
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # noqa: BLE001 - the SDK raises ConnectionError/RuntimeError/ValueError variously
        raise RaylightError(f"--address: cannot use the Ray job server at {address} ({_first_line(exc)}){_auth_hint(exc)}") from None


def build_entrypoint(config: Path, overrides: list[str], working_dir: Path, run_root: str) -> list[str]:
    """The job's command line: ``raylight train`` on the config (relative to the uploaded working dir)."""
    try:
        rel = config.resolve().relative_to(working_dir.resolve())
    except ValueError:
        raise ConfigError(f"{config}: the config must be inside --working-dir {working_dir} (it is uploaded with it)") from None
    kept = [o for o in overrides if not o.startswith(("run_root=", "ray.address="))]
    return ["python", "-m", "raylight.core.cli", "train", rel.as_posix(), *kept, f"run_root={run_root}", "ray.address=auto"]


def submit(config: Path, overrides: list[str], address: str, working_dir: Path, follow: bool) -> int:
    """Validate the config here (one line on a mistake), submit, print the job id; ``follow`` tails the logs."""
    from raylight.core.config import load_config

    cfg = load_config(config, overrides)  # bad keys fail here, before anything is uploaded
    run_root = cfg.run_root if Path(cfg.run_root).expanduser().is_absolute() else DURABLE_RUN_ROOT
    entrypoint = build_entrypoint(config, overrides, working_dir, run_root)
    env_vars = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    runtime_env = {"working_dir": str(working_dir), "excludes": UPLOAD_EXCLUDES, "env_vars": env_vars}
    jobs = client(address)
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            job_id = jobs.submit_job(entrypoint=shlex.join(entrypoint), runtime_env=runtime_env, metadata={"raylight_config": str(config)})
            break
        except Exception as exc:  # noqa: BLE001
            # A fresh head's job agent comes up some seconds after its job server: retry that case only.
            if "agent" in str(exc).lower() and time.monotonic() < deadline:
                time.sleep(2.0)
                continue
            raise RaylightError(f"submit: the job server at {address} refused the job ({_first_line(exc)}){_auth_hint(exc)}") from None
    print(job_id)
    print(f"raylight: submitted {job_id} to {address}; run directory under {run_root} on the head node", file=sys.stderr)
    print(f"raylight: follow with `raylight jobs logs {job_id} --follow --address {address}`", file=sys.stderr)
    return follow_job(jobs, job_id) if follow else 0


def follow_job(jobs: Any, job_id: str) -> int:
    """Print the job's logs as they come; exit 0 if it succeeded, 1 otherwise."""

    async def tail() -> None:
        async for lines in jobs.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    asyncio.run(tail())
    status = wait_finished(jobs, job_id)
    print(f"raylight: job {job_id} {status}", file=sys.stderr)
    return 0 if status == "SUCCEEDED" else 1


def wait_finished(jobs: Any, job_id: str, timeout_s: float = 60.0) -> str:
    """The terminal status (the log stream can end a moment before the status is final)."""
    deadline = time.monotonic() + timeout_s
    status = str(jobs.get_job_status(job_id).value)
    while status in ("PENDING", "RUNNING") and time.monotonic() < deadline:
        time.sleep(0.5)
        status = str(jobs.get_job_status(job_id).value)
    return status


def jobs_command(action: str, job_id: str | None, address: str, follow: bool) -> int:
    jobs = client(address)
    try:
        if action == "list":
            listed = sorted(jobs.list_jobs(), key=lambda j: j.start_time or 0)
            for job in listed:
                print(f"{job.submission_id or job.job_id}\t{job.status.value}\t{job.entrypoint}")
            if not listed:
                print(f"raylight: no jobs on the cluster at {address}", file=sys.stderr)
            return 0
        if job_id is None:
            raise ConfigError(f"jobs {action}: give the job id (see `raylight jobs list`)")
        if action == "status":
            info = jobs.get_job_info(job_id)
            print(f"{job_id}\t{info.status.value}\t{info.message or ''}")
            return 0
        if action == "logs":
            if follow:
                return follow_job(jobs, job_id)
            print(jobs.get_job_logs(job_id), end="")
            return 0
        if action == "stop":
            stopped = jobs.stop_job(job_id)
            print(f"raylight: job {job_id} {'stopping' if stopped else 'was not running'}", file=sys.stderr)
            return 0
    except RaylightError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. an unknown job id comes back as a RuntimeError with the HTTP body
        raise RaylightError(f"jobs {action}: {_first_line(exc)}{_auth_hint(exc)}") from None
    raise ConfigError(f"jobs: unknown action {action!r}")


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"


def _auth_hint(exc: BaseException) -> str:
    text = str(exc).lower()
    if "401" in text or "403" in text or "unauthori" in text or "token" in text:
        return "; the cluster uses token authentication: set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
    return ""
