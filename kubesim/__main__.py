"""``python -m kubesim serve --port PORT --kubeconfig PATH [--state FILE] [--ready-delay SECONDS]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from kubesim import protogen
from kubesim.app import KubeSim


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubesim", description="A local Kubernetes API emulator.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Kubernetes API on 127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    serve.add_argument("--kubeconfig", type=Path, required=True, help="where to write a kubeconfig for it")
    serve.add_argument("--state", type=Path, default=None, help="persist the store to this JSON file")
    serve.add_argument(
        "--ready-delay",
        type=float,
        default=0.5,
        help="seconds from pod start to Ready (per-pod annotation kubesim.io/ready-delay wins)",
    )
    args = parser.parse_args(argv)

    try:  # built once (make install does it); kubectl's typed commands speak protobuf
        protogen.ensure()
    except protogen.ProtoGenError as exc:
        print(f"kubesim: no protobuf (kubectl create <kind> will fail): {exc}", file=sys.stderr, flush=True)
    sim = KubeSim(ready_delay=args.ready_delay, state_path=args.state)

    def ready(url: str) -> None:
        print(f"kubesim listening on {url}", flush=True)

    asyncio.run(sim.serve(args.port, args.kubeconfig, on_ready=ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
