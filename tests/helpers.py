"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


def quiet(run_root: str) -> list[str]:
    """Overrides for test runs: no tracker, no progress bar, no periodic checkpoints, runs under run_root."""
    return ["tracking.backend=none", f"run_root={run_root}", "trainer.progress_bar=false", "checkpoint.every_iterations=1000"]


LOOPBACK_NODE = {"node_ip_address": "127.0.0.1", "dashboard_host": "127.0.0.1"}


def loopback_cluster(head_args: dict[str, Any], *worker_args: dict[str, Any]) -> Any:
    """A ``ray.cluster_utils.Cluster`` whose every node listens on 127.0.0.1 only (its default is the machine's
    interface address, so test clusters were reachable from the network: issue 22)."""
    from ray.cluster_utils import Cluster

    from raylight.core.cluster import keep_loopback_ip

    with keep_loopback_ip():
        cluster = Cluster(initialize_head=True, head_node_args={**LOOPBACK_NODE, **head_args})
        for args in worker_args:
            cluster.add_node(**{**LOOPBACK_NODE, **args})
    cluster.wait_for_nodes()
    return cluster


def connect_loopback(address: str) -> None:
    """``ray.init(address)`` for a driver of a loopback cluster (Ray would dial the interface address instead)."""
    import ray

    from raylight.core.cluster import keep_loopback_ip

    with keep_loopback_ip():
        ray.init(address=address)


def shutdown_ray_after_package() -> Iterator[None]:
    """Body of each test package's autouse fixture: one Ray instance per package (core, rl, ssl, ...).

    One instance for the whole session stalled late in the run: after some hundreds of actors (rollout
    workers, shard readers, Ray Train worker groups) had come and gone in one driver, newly created
    actors never ran their first call although the cluster had every CPU free. Each package alone, and
    every CLI run (a fresh process, as users run raylight), never showed it.
    """
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


def read_wandb_records(path: Path) -> list[Any]:
    """The protobuf records of an offline ``run-*.wandb`` file, decoded with wandb's own message types.

    wandb >= 0.2x reads these files in its Go core only; the framing is LevelDB's log format behind a
    7-byte ``:W&B`` header (32 KiB blocks; records are FULL or FIRST/MIDDLE.../LAST fragments).
    """
    import struct

    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1, f"{path}: not a W&B datastore file"
    records, pending, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # too little room left in this block for a header: padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:  # zero padding at the end of a block or file
            pos += block - pos % block
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records
