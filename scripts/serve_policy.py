#!/usr/bin/env python
"""Serve a trained policy over websockets with openpi's protocol (openpi-client drives it unchanged).

    python scripts/serve_policy.py --checkpoint logs/demo                            # ws://0.0.0.0:8000
    python scripts/serve_policy.py --checkpoint logs/libero_cpu --keys openpi_libero  # openpi's LIBERO example
    python scripts/serve_policy.py --checkpoint logs/libero_cpu --onnx policy.onnx    # ONNX Runtime's chunks
    python scripts/eval.py --sim demo --server ws://localhost:8000                     # closed loop through it

Each observation gets the whole action chunk back ({"actions": [T, A], "server_timing": ...});
the client executes it (vggt_vla.serving.PolicyClient keeps the checkpoint's action queue; openpi's
ActionChunkBroker does the same). Protocol, key mapping and per-connection state:
vggt_vla/serving.py. Needs requirements-deploy.txt. A bad checkpoint or a port in use: one line on
stderr, exit code 2. Ctrl-C or SIGTERM closes the connections and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="run directory (best.pt, else last.pt) or .pt file")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    # serving.KEY_MAPPINGS, spelled out: serving is imported after parsing, so --help needs no websockets
    parser.add_argument("--keys", choices=["checkpoint", "openpi_libero"], default="checkpoint",
                        help="observation keys: the checkpoint's own (data.camera_keys, data.state_key, "
                             "instruction), or openpi's LIBERO example's (observation/image, "
                             "observation/wrist_image, observation/state, prompt)")
    parser.add_argument("--onnx", metavar="FILE",
                        help="predict chunks with this checkpoint's graph from scripts/export_onnx.py, in ONNX "
                             "Runtime on the CPU (faster than PyTorch eager on a CPU)")
    parser.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING"],
                        help="DEBUG: one line per request")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port (0..65535)")
    # The log (connections, latency) on stdout; stderr holds only an error that stops the server.
    logging.basicConfig(level=args.log_level, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)  # our own lines name each client

    try:
        from vggt_vla.serving import ServerError, serve
    except ImportError as err:  # websockets / msgpack missing
        print(f"error: {err}; install the serving dependencies: pip install -r requirements-deploy.txt",
              file=sys.stderr)
        return 2
    from vggt_vla.checkpoint import CheckpointError
    from vggt_vla.config import ConfigError
    from vggt_vla.export import ExportError
    from vggt_vla.models.pretrained import PretrainedUnavailable

    try:
        serve(args.checkpoint, host=args.host, port=args.port, device=args.device, keys=args.keys,
              onnx_path=args.onnx)
    except (CheckpointError, PretrainedUnavailable, ConfigError, ServerError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during loading; once serving, Ctrl-C closes the connections and returns
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
