"""``ray start`` that keeps a node on 127.0.0.1 unless told otherwise.

    python -m raylight.core.ray_node start --head --port 6379 --num-cpus 16
    python -m raylight.core.ray_node start --address 127.0.0.1:6379 --num-cpus 16

Ray's own ``ray start`` (2.60) listens beyond loopback even with ``--node-ip-address=127.0.0.1``: it turns a
loopback node IP into the machine's interface address, and the GCS, raylet, dashboard agent (whose job agent
accepts jobs: anyone reaching it can run code), runtime-env agent and metrics endpoints bind that address or all
interfaces. This wrapper adds ``--node-ip-address=127.0.0.1`` (and ``--dashboard-host=127.0.0.1`` on a head) unless
the command line names them, and keeps the loopback IP as given. Every other word goes to ``ray`` unchanged
(``stop``, ``status``, ...). Nodes on other machines must name their reachable address (and so listen there).

A loopback head also takes job submissions: the processes it starts (the dashboard agent's job manager, each
job's driver) resolve "127.0.0.1" to the machine's interface address by themselves, where the loopback GCS does
not listen, so every ``ray job submit`` / ``raylight submit`` waited and failed with "No available agent to submit
job". Ray keeps loopback as loopback when ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (its single-machine mode, the
default on macOS and Windows), which the head's processes inherit; worker nodes still join with ``--address``.
"""

from __future__ import annotations

import sys

from raylight.core.cluster import keep_loopback_ip


def loopback_args(argv: list[str]) -> list[str]:
    """``argv`` of ``ray ...`` with the loopback defaults added to a ``start``."""
    if argv[:1] != ["start"]:
        return argv
    named = {a.split("=", 1)[0] for a in argv}
    extra = [] if "--node-ip-address" in named else ["--node-ip-address=127.0.0.1"]
    if "--head" in argv and "--dashboard-host" not in named:
        extra.append("--dashboard-host=127.0.0.1")
    return [*argv, *extra]


LOOPBACK_HEAD_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray's own switch: "127.0.0.1" stays 127.0.0.1


def is_loopback_head(args: list[str]) -> bool:
    """A ``start --head`` whose node IP (as ``loopback_args`` completed it) is 127.0.0.1."""
    if args[:1] != ["start"] or "--head" not in args:
        return False
    for i, arg in enumerate(args):
        if arg.startswith("--node-ip-address="):
            return arg.split("=", 1)[1] == "127.0.0.1"
        if arg == "--node-ip-address" and i + 1 < len(args):
            return args[i + 1] == "127.0.0.1"
    return False


def main(argv: list[str] | None = None) -> None:
    import os

    args = loopback_args(list(sys.argv[1:] if argv is None else argv))
    if is_loopback_head(args):
        os.environ.update(LOOPBACK_HEAD_ENV)  # before Ray is imported: it reads the switch once
    from ray.scripts.scripts import cli

    with keep_loopback_ip():
        cli.main(args=args, prog_name="ray")


if __name__ == "__main__":
    main()
