"""GPU benchmark: raylight's CUDA path through the real CLI, with the same runs on the CPU for a ratio.

Each run is ``raylight train configs/X.yaml key=value ...`` in a subprocess (CSV tracking, no progress
bar, a fresh ``run_root``); the figures come from the run directory's ``summary.json`` and
``metrics/metrics.csv``. While a run lasts, ``nvidia-smi`` is sampled in the background: the peak of the
card's ``memory.used`` (CUDA context included: torch.cuda.max_memory_allocated is in-process only and
raylight is not changed for this) and of ``utilization.gpu``, and the compute processes it lists.
Evidence that a run really used the GPU: nvidia-smi listed a process of the run with GPU memory, and the
tensors of the run's ``last.ckpt`` were saved from ``cuda:0`` (their storage location in the pickle).
Lightning's own "GPU available: True (cuda), used: True" line is silenced by ``raylight.core.quiet``.

Groups (``--groups``, comma separated, run in this order):
  rl    DQN and PPO on CartPole-v1 (learner in-process, ``trainer.num_workers=1``), GPU vs CPU; PPO also with
        2 Ray rollout actors feeding the GPU learner
  ssl   SimCLR and the MLP autoencoder on digits (2 Ray shard readers), GPU fp32, GPU bf16-mixed, CPU fp32
  dist  ``trainer.num_workers=2`` (Ray Train + Lightning DDP) on the one GPU: as configured, with
        ``ray.num_gpus=2`` (Ray told there are two), with ``ray.num_gpus=0.5``; and the same on CPU (gloo)
  nccl  not raylight: two torch.distributed NCCL ranks on the same cuda:0, to show what DDP does there

    python benchmarks/bench_gpu.py --out /tmp/gpu-bench                # all groups
    python benchmarks/bench_gpu.py --groups rl,dist --deadline-s 540   # a subset, stopping before 540 s
    python benchmarks/bench_gpu.py --render results.json [...]         # markdown from saved results

Writes ``<out>/results.json``, ``<out>/gpu.md`` (tables), ``<out>/runs.log`` (each run's command and
output tail) and ``<out>/gpu.png`` (throughput GPU vs CPU) after every run, so a run cut short still
leaves what it measured.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours its workers' log prefixes
COMMON = ["seed=0", "tracking.backend=csv", "trainer.progress_bar=false"]
# RL: throughput over a fixed env-step budget; one evaluation at the end, never an early stop.
DQN = ["trainer.total_env_steps=12288", "eval.every_env_steps=12288", "eval.episodes=5", "eval.stop_at_return=null"]
PPO = ["trainer.total_env_steps=40960", "eval.every_env_steps=40960", "eval.episodes=5", "eval.stop_at_return=null"]
SSL_EPOCHS = ["trainer.max_epochs=30"]

# name, group, config, overrides, timeout_s, note
RUNS: list[tuple[str, str, str, list[str], int, str]] = [
    ("dqn-gpu", "rl", "dqn-cartpole.yaml", [*DQN, "trainer.accelerator=gpu"], 150, ""),
    ("dqn-cpu", "rl", "dqn-cartpole.yaml", [*DQN, "trainer.accelerator=cpu"], 150, ""),
    ("ppo-gpu", "rl", "ppo-cartpole.yaml", [*PPO, "trainer.accelerator=gpu"], 150, ""),
    ("ppo-cpu", "rl", "ppo-cartpole.yaml", [*PPO, "trainer.accelerator=cpu"], 150, ""),
    ("ppo-2actors-gpu", "rl", "ppo-cartpole.yaml",
     [*PPO, "trainer.accelerator=gpu", "rollout.num_workers=2", "rollout.envs_per_worker=4"], 150, "2 Ray rollout actors x 4 envs"),
    ("ppo-2actors-cpu", "rl", "ppo-cartpole.yaml",
     [*PPO, "trainer.accelerator=cpu", "rollout.num_workers=2", "rollout.envs_per_worker=4"], 150, "2 Ray rollout actors x 4 envs"),
    ("simclr-gpu", "ssl", "simclr-digits.yaml", [*SSL_EPOCHS, "trainer.accelerator=gpu"], 150, ""),
    ("simclr-gpu-bf16", "ssl", "simclr-digits.yaml", [*SSL_EPOCHS, "trainer.accelerator=gpu", "trainer.precision=bf16-mixed"], 150, ""),
    ("simclr-cpu", "ssl", "simclr-digits.yaml", [*SSL_EPOCHS, "trainer.accelerator=cpu"], 150, ""),
    ("ae-gpu", "ssl", "ae-digits.yaml", [*SSL_EPOCHS, "trainer.accelerator=gpu"], 150, ""),
    ("ae-gpu-bf16", "ssl", "ae-digits.yaml", [*SSL_EPOCHS, "trainer.accelerator=gpu", "trainer.precision=bf16-mixed"], 150, ""),
    ("ae-cpu", "ssl", "ae-digits.yaml", [*SSL_EPOCHS, "trainer.accelerator=cpu"], 150, ""),
    # Ray Train: a worker group that cannot be placed is retried by Ray Train; its start timeout is lowered
    # (RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S, see run_one) so the outcome shows inside the run's timeout.
    ("ppo-ddp2-gpu", "dist", "ppo-cartpole.yaml", [*PPO, "trainer.accelerator=gpu", "trainer.num_workers=2"], 80,
     "2 learner ranks, 1 GPU each requested, 1 GPU present"),
    ("ppo-ddp2-gpu-raygpus2", "dist", "ppo-cartpole.yaml",
     [*PPO, "trainer.accelerator=gpu", "trainer.num_workers=2", "ray.num_gpus=2"], 100, "Ray told the machine has 2 GPUs"),
    ("ppo-ddp2-gpu-raygpus0.5", "dist", "ppo-cartpole.yaml",
     [*PPO, "trainer.accelerator=gpu", "trainer.num_workers=2", "ray.num_gpus=0.5"], 40, "fractional GPUs asked for"),
    ("ppo-ddp2-cpu", "dist", "ppo-cartpole.yaml", [*PPO, "trainer.accelerator=cpu", "trainer.num_workers=2"], 150, "gloo"),
    ("ae-ddp2-cpu", "dist", "ae-digits.yaml", [*SSL_EPOCHS, "trainer.accelerator=cpu", "trainer.num_workers=2"], 150, "gloo"),
]

NCCL_SNIPPET = r"""
import os, sys, torch, torch.distributed as dist, torch.multiprocessing as mp
def rank(r):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29517")
    dist.init_process_group("nccl", rank=r, world_size=2, device_id=torch.device("cuda:0"))
    t = torch.ones(4, device="cuda:0") * (r + 1)
    dist.all_reduce(t)
    torch.cuda.synchronize()
    print(f"rank {r}: all_reduce on cuda:0 gave {t.tolist()}", flush=True)
    dist.destroy_process_group()
if __name__ == "__main__":
    mp.spawn(rank, nprocs=2, join=True)
"""


# ----------------------------------------------------------------------------------------------- sampling
class GpuSampler:
    """Background nvidia-smi sampling: card memory.used / utilization.gpu every 200 ms (one long-lived
    ``nvidia-smi -lms``), compute processes every second."""

    def __init__(self) -> None:
        self.available = shutil.which("nvidia-smi") is not None
        self.mem: list[float] = []
        self.util: list[float] = []
        self.apps: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> GpuSampler:
        if not self.available:
            return self
        self._proc = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=memory.used,utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self._threads = [threading.Thread(target=self._read, daemon=True), threading.Thread(target=self._apps, daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                m, u = (float(x) for x in line.strip().split(","))
            except ValueError:
                continue
            self.mem.append(m)
            self.util.append(u)

    def _apps(self) -> None:
        while not self._stop.wait(1.0):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader,nounits"],
                    capture_output=True, text=True, timeout=10,
                ).stdout
            except (subprocess.SubprocessError, OSError):
                continue
            for line in out.strip().splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 3 and parts[0].isdigit():
                    try:
                        used = float(parts[2])
                    except ValueError:
                        used = math.nan
                    old = self.apps.get(int(parts[0]), ("", 0.0))[1]
                    self.apps[int(parts[0])] = (parts[1], max(old, used) if math.isfinite(used) else old)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        for t in self._threads:
            t.join(5)


def gpu_idle_memory() -> float | None:
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"], capture_output=True, text=True)
    try:
        return float(out.stdout.strip().splitlines()[0])
    except (ValueError, IndexError):
        return None


# ----------------------------------------------------------------------------------------------- one run
def raylight_command() -> list[str]:
    exe = shutil.which("raylight")
    return [exe] if exe else [sys.executable, "-m", "raylight.core.cli"]


def checkpoint_devices(path: Path) -> list[str]:
    """Storage locations recorded in a torch zip checkpoint's pickle ('cuda:0', 'cpu'), without loading it."""
    try:
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("data.pkl"))
            data = z.read(name)
    except (OSError, zipfile.BadZipFile, StopIteration):
        return []
    found = set()
    for loc in (b"cuda:0", b"cuda:1", b"cpu"):
        if loc in data:
            found.add(loc.decode())
    return sorted(found)


def process_tree(root_pid: int) -> set[int]:
    """PIDs whose session is the run's (it is started with start_new_session): the CLI, Ray's workers and actors."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == root_pid:  # field 6 of /proc/PID/stat: session id
                pids.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def read_metrics_csv(path: Path) -> dict[str, float]:
    """Last non-empty value of each column."""
    last: dict[str, float] = {}
    if not path.is_file():
        return last
    with path.open() as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if v not in ("", None):
                    try:
                        last[k] = float(v)
                    except ValueError:
                        pass
    return last


def run_one(name: str, group: str, config: str, overrides: list[str], timeout_s: int, note: str, run_root: Path) -> dict[str, Any]:
    root = run_root / name
    cmd = [*raylight_command(), "train", f"configs/{config}", *COMMON, f"run_root={root}", *overrides]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if group == "dist":
        env.setdefault("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "20")
    rec: dict[str, Any] = {"name": name, "group": group, "config": config, "overrides": overrides, "note": note,
                           "device": "gpu" if "trainer.accelerator=gpu" in overrides else "cpu",
                           "precision": next((o.split("=", 1)[1] for o in overrides if o.startswith("trainer.precision=")), "32-true"),
                           "command": " ".join(cmd[len(raylight_command()):])}
    idle = gpu_idle_memory()
    t0 = time.perf_counter()
    seen_pids: set[int] = set()
    with GpuSampler() as sampler, tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        while proc.poll() is None:
            seen_pids |= process_tree(proc.pid)
            if time.perf_counter() - t0 > timeout_s:
                timed_out = True
                os.killpg(proc.pid, signal.SIGINT)  # raylight handles Ctrl-C: summary, checkpoint, ray.shutdown
                try:
                    proc.wait(25)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                break
            time.sleep(0.5)
        for pid in process_tree(proc.pid):  # anything of this run still alive (Ray workers of a killed driver)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.seek(0)
        output = log.read()
    rec["process_wall_s"] = time.perf_counter() - t0
    rec["returncode"] = proc.returncode
    rec["timed_out"] = timed_out
    rec["gpu_idle_mib"] = idle
    rec["gpu_peak_mib"] = max(sampler.mem) if sampler.mem else None
    rec["gpu_peak_over_idle_mib"] = (rec["gpu_peak_mib"] - idle) if sampler.mem and idle is not None else None
    rec["gpu_util_max"] = max(sampler.util) if sampler.util else None
    rec["gpu_util_mean"] = sum(sampler.util) / len(sampler.util) if sampler.util else None
    ours = {pid: v for pid, v in sampler.apps.items() if pid in seen_pids}
    rec["gpu_processes"] = [{"pid": p, "name": n, "max_used_mib": m} for p, (n, m) in sorted(ours.items())]
    rec["gpu_processes_foreign"] = len(sampler.apps) - len(ours)
    run_dirs = sorted(root.glob("*/summary.json")) if root.is_dir() else []
    summary = json.loads(run_dirs[-1].read_text()) if run_dirs else {}
    rec["summary"] = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    rec["status"] = summary.get("status") or ("timeout" if timed_out else f"exit {proc.returncode}")
    if run_dirs:
        run_dir = run_dirs[-1].parent
        rec["run_dir"] = str(run_dir)
        rec["ckpt_devices"] = checkpoint_devices(run_dir / "checkpoints" / "last.ckpt")
        m = read_metrics_csv(run_dir / "metrics" / "metrics.csv")
        wall = summary.get("wall_s") or math.nan
        if "env_steps" in summary:
            rec["env_steps_per_s"] = summary["env_steps"] / wall
            rec["iterations"] = m.get("step", math.nan) + 1
            rec["iterations_per_s"] = rec["iterations"] / wall
            if "train/gradient_updates" in m:
                rec["grad_updates"] = m["train/gradient_updates"]
                rec["grad_updates_per_s"] = m["train/gradient_updates"] / wall
            rec["quality"] = summary.get("eval_return_mean")
            rec["quality_name"] = "eval return"
        if "train_samples_per_s" in summary:
            rec["samples_per_s"] = summary["train_samples_per_s"]
            rec["quality"] = summary.get("probe_accuracy", summary.get("train/loss"))
            rec["quality_name"] = "probe acc" if "probe_accuracy" in summary else "train loss"
    lines = ANSI.sub("", output).rstrip().splitlines()
    rec["error_lines"] = [ln for ln in lines if any(s in ln for s in ("Error", "error:", "Traceback", "refused", "Insufficient"))
                          and "IntentionalSystemExit" not in ln][-12:]
    rec["output_tail"] = "\n".join(lines[-60:])
    return rec


def run_nccl() -> dict[str, Any]:
    t0 = time.perf_counter()
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(NCCL_SNIPPET)
    env = dict(os.environ, PYTHONUNBUFFERED="1", NCCL_DEBUG="WARN")
    try:
        p = subprocess.run([sys.executable, f.name], capture_output=True, text=True, timeout=90, env=env)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as exc:
        out, rc = (exc.stdout or b"").decode() + (exc.stderr or b"").decode() + "\n(timed out after 90 s)", None
    lines = out.rstrip().splitlines()
    return {"name": "nccl-2ranks-1gpu", "group": "nccl", "status": "completed" if rc == 0 else f"exit {rc}", "returncode": rc,
            "process_wall_s": time.perf_counter() - t0, "device": "gpu", "note": "torch.distributed alone, not raylight",
            "error_lines": [ln for ln in lines if any(s in ln for s in ("Error", "error", "Duplicate", "rank"))][-12:],
            "output_tail": "\n".join(lines[-40:]), "command": "python -c <NCCL_SNIPPET> (2 ranks, both cuda:0)"}


# ----------------------------------------------------------------------------------------------- environment
def environment() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M %Z")}
    if shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True).stdout.strip()
        info["gpu"] = q
    code = ("import json, torch, pytorch_lightning as pl\n"
            "d = {'torch': torch.__version__, 'cuda': torch.version.cuda, 'cuda_available': torch.cuda.is_available(),"
            " 'lightning': pl.__version__}\n"
            "try:\n import ray; d['ray'] = ray.__version__\nexcept Exception as e: d['ray'] = repr(e)\n"
            "if torch.cuda.is_available(): d['device_name'] = torch.cuda.get_device_name(0)\n"
            "print(json.dumps(d))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    try:
        info.update(json.loads(out.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        info["probe_error"] = out.stderr[-500:]
    try:
        info["cpu_model"] = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


# ----------------------------------------------------------------------------------------------- report
def f(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def cuda_evidence(r: dict[str, Any]) -> str:
    procs = r.get("gpu_processes") or []
    parts = []
    if procs:
        parts.append(f"{len(procs)} proc on GPU (max {f(max(p['max_used_mib'] for p in procs), 0)} MiB)")
    else:
        parts.append("no proc on GPU")
    if r.get("ckpt_devices"):
        parts.append("ckpt " + "+".join(r["ckpt_devices"]))
    return "; ".join(parts)


def render(env: dict[str, Any], results: list[dict[str, Any]]) -> str:
    by = {r["name"]: r for r in results}
    lines = ["# raylight on a GPU", ""]
    lines.append(f"Device: {env.get('gpu', 'no nvidia-smi')}; {env.get('cpus')} CPU cores ({env.get('cpu_model', '?')}); "
                 f"Python {env.get('python')}, torch {env.get('torch')} (CUDA {env.get('cuda')}), Lightning {env.get('lightning')}, "
                 f"Ray {env.get('ray')}; run {env.get('when')}.")
    lines += ["", "Every run is `raylight train configs/<config> seed=0 tracking.backend=csv trainer.progress_bar=false <overrides>` "
              "(see `benchmarks/bench_gpu.py`). GPU memory is nvidia-smi's `memory.used` of the card sampled every 200 ms "
              "(peak minus the idle reading; it includes each process's CUDA context), utilisation is `utilization.gpu`.", ""]
    rl = [r for r in results if r["group"] == "rl"]
    if rl:
        lines += ["## RL (CartPole-v1, learner in-process: `trainer.num_workers=1`)", "",
                  "| run | device | status | env steps | wall s | env steps/s | learner iters/s | grad updates/s | GPU/CPU steps/s | "
                  "peak GPU MiB (over idle) | GPU util max % | eval return | CUDA evidence |", "|" + "---|" * 13]
        for r in rl:
            cpu = by.get(r["name"].replace("-gpu", "-cpu")) if r["device"] == "gpu" else None
            ratio = (r.get("env_steps_per_s") or math.nan) / (cpu.get("env_steps_per_s") or math.nan) if cpu else None
            s = r.get("summary", {})
            lines.append(f"| {r['name']} | {r['device']} | {r['status']} | {f(s.get('env_steps'))} | {f(s.get('wall_s'))} | "
                         f"{f(r.get('env_steps_per_s'), 0)} | {f(r.get('iterations_per_s'), 2)} | {f(r.get('grad_updates_per_s'), 0)} | "
                         f"{f(ratio, 2) + 'x' if ratio is not None and math.isfinite(ratio) else '—'} | "
                         f"{f(r.get('gpu_peak_over_idle_mib'), 0)} | {f(r.get('gpu_util_max'), 0)} | {f(r.get('quality'))} | {cuda_evidence(r)} |")
        lines.append("")
    ssl = [r for r in results if r["group"] == "ssl"]
    if ssl:
        lines += ["## Self-supervised (digits, 2 Ray shard readers, 30 epochs)", "",
                  "| run | device | precision | status | steps | wall s | train samples/s | GPU/CPU samples/s | peak GPU MiB (over idle) | "
                  "GPU util max % | quality | CUDA evidence |", "|" + "---|" * 12]
        for r in ssl:
            base = r["name"].split("-")[0] + "-cpu"
            cpu = by.get(base) if r["device"] == "gpu" else None
            ratio = (r.get("samples_per_s") or math.nan) / (cpu.get("samples_per_s") or math.nan) if cpu else None
            s = r.get("summary", {})
            lines.append(f"| {r['name']} | {r['device']} | {r['precision']} | {r['status']} | {f(s.get('steps'))} | {f(s.get('wall_s'))} | "
                         f"{f(r.get('samples_per_s'), 0)} | {f(ratio, 2) + 'x' if ratio is not None and math.isfinite(ratio) else '—'} | "
                         f"{f(r.get('gpu_peak_over_idle_mib'), 0)} | {f(r.get('gpu_util_max'), 0)} | "
                         f"{r.get('quality_name', '')} {f(r.get('quality'), 3)} | {cuda_evidence(r)} |")
        lines.append("")
    dist = [r for r in results if r["group"] in ("dist", "nccl")]
    if dist:
        lines += ["## Several learner ranks (`trainer.num_workers=2`: Ray Train + DDP) on one GPU", "",
                  "| run | what | status | wall s | env steps/s or samples/s | CUDA evidence | what it said |", "|" + "---|" * 7]
        for r in dist:
            rate = r.get("env_steps_per_s") or r.get("samples_per_s")
            said = " / ".join(ANSI.sub("", ln).strip()[:220] for ln in (r.get("error_lines") or [])[-3:]).replace("|", "\\|") or "—"
            lines.append(f"| {r['name']} | {r.get('note', '')} | {r['status']} | {f(r.get('process_wall_s'))} | {f(rate, 0)} | "
                         f"{cuda_evidence(r) if r['group'] == 'dist' else '—'} | {said} |")
        lines.append("")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    pairs = []
    for r in results:
        if r["device"] != "gpu" or r["group"] not in ("rl", "ssl"):
            continue
        key = "env_steps_per_s" if r["group"] == "rl" else "samples_per_s"
        cpu_name = r["name"].replace("-gpu", "-cpu") if r["group"] == "rl" else r["name"].split("-")[0] + "-cpu"
        cpu = next((c for c in results if c["name"] == cpu_name), None)
        if cpu and r.get(key) and cpu.get(key):
            pairs.append((r["name"], r[key] / cpu[key]))
    if not pairs:
        return
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(pairs) + 1.2))
    ax.barh([p[0] for p in pairs], [p[1] for p in pairs], color=["tab:green" if p[1] >= 1 else "tab:red" for p in pairs])
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xlabel("throughput GPU / CPU (same machine; RL env steps/s, SSL train samples/s)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save(out: Path, env: dict[str, Any], results: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"environment": env, "results": results}, indent=1, default=str))
    (out / "gpu.md").write_text(render(env, results) + "\n")
    with (out / "runs.log").open("w") as log:
        for r in results:
            log.write(f"=== {r['name']} [{r['status']}] {r.get('process_wall_s', 0):.1f} s\n$ raylight {r.get('command', '')}\n")
            log.write((r.get("output_tail") or "") + "\n\n")
    plot(results, out / "gpu.png")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu-run"), help="folder for results.json, gpu.md, runs.log, gpu.png")
    p.add_argument("--groups", default="rl,ssl,dist,nccl", help="comma separated: rl, ssl, dist, nccl")
    p.add_argument("--only", default="", help="comma separated run names (default: every run of the groups)")
    p.add_argument("--deadline-s", type=float, default=math.inf, help="start no run that could end after this many seconds")
    p.add_argument("--run-root", default="", help="where run directories go (default: a temporary folder)")
    p.add_argument("--render", nargs="+", metavar="RESULTS_JSON", help="only write gpu.md/gpu.png from saved results.json files (merged)")
    args = p.parse_args()
    out = Path(args.out)
    if args.render:
        env, results = {}, []
        for path in args.render:
            data = json.loads(Path(path).read_text())
            env = env or data["environment"]
            names = {r["name"] for r in data["results"]}
            results = [r for r in results if r["name"] not in names] + data["results"]
        save(out, env, results)
        print(render(env, results))
        return 0
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    run_root = Path(args.run_root or tempfile.mkdtemp(prefix="raylight-gpu-bench-"))
    t_start = time.perf_counter()
    env = environment()
    print(json.dumps(env), flush=True)
    results: list[dict[str, Any]] = []
    todo = [r for g in groups for r in RUNS if r[1] == g and (not only or r[0] in only)]
    for name, group, config, overrides, timeout_s, note in todo:
        left = args.deadline_s - (time.perf_counter() - t_start)
        if left < min(timeout_s, 45):
            results.append({"name": name, "group": group, "device": "gpu" if "trainer.accelerator=gpu" in overrides else "cpu",
                            "status": "skipped (time budget)", "note": note, "precision": "32-true"})
            continue
        print(f"--- {name}: raylight train configs/{config} {' '.join(overrides)}", flush=True)
        rec = run_one(name, group, config, overrides, int(min(timeout_s, left - 5)), note, run_root)
        results.append(rec)
        print(f"    {rec['status']} in {rec['process_wall_s']:.1f} s; steps/s {f(rec.get('env_steps_per_s'), 0)} "
              f"samples/s {f(rec.get('samples_per_s'), 0)}; GPU peak {f(rec.get('gpu_peak_mib'), 0)} MiB, util max "
              f"{f(rec.get('gpu_util_max'), 0)}%; {cuda_evidence(rec)}", flush=True)
        for ln in rec.get("error_lines", [])[-4:]:
            print(f"    ! {ln[:300]}", flush=True)
        save(out, env, results)
    if "nccl" in groups and (args.deadline_s - (time.perf_counter() - t_start)) > 60:
        rec = run_nccl()
        results.append(rec)
        print(f"--- nccl: {rec['status']}", *("    ! " + ln[:300] for ln in rec["error_lines"][-6:]), sep="\n", flush=True)
    save(out, env, results)
    print(render(env, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
