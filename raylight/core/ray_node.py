"""``ray start`` that keeps a node on 127.0.0.1 unless told otherwise.

    python -m raylight.core.ray_node start --head --port 6379 --num-cpus 16
    python -m raylight.core.ray_node start --address 127.0.0.1:6379 --num-cpus 16

Ray's own ``ray start`` (2.60) listens beyond loopback even with ``--node-ip-address=127.0.0.1``: it turns a
loopback node IP into the machine's interface address, and the GCS, raylet, dashboard agent (whose job agent
accepts jobs: anyone reaching it can run code), runtime-env agent and metrics endpoints bind that address or all
interfaces. This wrapper adds ``--node-ip-address=127.0.0.1`` (and ``--dashboard-host=127.0.0.1`` on a head) unless
the command line names them, and keeps the loopback IP as given. Every other word goes to ``ray`` unchanged
(``stop``, ``status``, ...). Nodes on other machines must name their reachable address (and so listen there).
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


def main(argv: list[str] | None = None) -> None:
    from ray.scripts.scripts import cli

    args = loopback_args(list(sys.argv[1:] if argv is None else argv))
    with keep_loopback_ip():
        cli.main(args=args, prog_name="ray")


if __name__ == "__main__":
    main()
