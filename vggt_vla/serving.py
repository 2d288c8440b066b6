"""Serve a trained Policy over websockets with openpi's wire protocol, and a small client for it.

    python scripts/serve_policy.py --checkpoint logs/demo --port 8000          # the server
    python scripts/eval.py --sim demo --server ws://localhost:8000               # closed loop through it

    from vggt_vla.serving import PolicyClient                                    # a robot loop
    client = PolicyClient("ws://localhost:8000")
    client.reset()                                   # at every episode start
    action = client.select_action(obs)               # [A], the same obs dict Policy.select_action takes

The protocol is openpi's (openpi_client.websocket_client_policy.WebsocketClientPolicy drives this
server unchanged):
  * binary frames hold msgpack; a numpy array travels as the map {b"__ndarray__": True, b"data":
    raw bytes, b"dtype": dtype.str, b"shape": shape} and a numpy scalar as {b"__npgeneric__": True,
    b"data": value, b"dtype": dtype.str} (openpi_client.msgpack_numpy's encoding);
  * on connect the server sends one metadata map (the checkpoint, the observation keys it reads,
    state_dim, action_dim, chunk_size, the checkpoint's n_action_steps / temporal_ensemble and its
    sim: section, so a client renders and executes as the checkpoint was meant to);
  * each observation map gets {"actions": [T, A] array (the whole chunk, in the dataset's action
    units), "server_timing": {"infer_ms", "prev_total_ms"}};
  * a request that fails (malformed msgpack, missing keys, wrong shapes, a NaN observation) gets
    one text frame, "ErrorType: message", which WebsocketClientPolicy.infer raises as RuntimeError.
    Unlike openpi's server, this one keeps the connection open and goes on serving.

Observation keys (--keys): "checkpoint" (default) reads the checkpoint's own keys, as
Policy.select_action does: each of config data.camera_keys, data.state_key, and "instruction" (or
"task"). "openpi_libero" reads what openpi's examples/libero/main.py sends: "observation/image"
and "observation/wrist_image" (the checkpoint's first and second camera), "observation/state" and
"prompt". Either way the state must have the checkpoint's state_dim (8 for LIBERO: end-effector
position, axis-angle, two gripper fingers, as openpi's example sends it). openpi's example rotates
the renders 180 degrees, the orientation of the LeRobot LIBERO datasets and of sim/libero.py, so its
frames reach the policy as its training frames were. With openpi's client:

    client = WebsocketClientPolicy("ws://HOST:8000")      # openpi_client.websocket_client_policy
    policy = ActionChunkBroker(client, action_horizon=client.get_server_metadata()["n_action_steps"])
    action = policy.infer(obs)["actions"]                   # [A]; obs under openpi's keys

(tests/test_serving.py::test_openpi_client_drives_an_episode runs exactly this with openpi-client
0.1.2 from its own venv; see that file for the command.)

State per connection. The server predicts chunks; executing them (the action queue of
n_action_steps, or temporal ensembling) is the client's job, as in openpi (ActionChunkBroker).
Each connection has its own sampler stream (flow-matching noise), seeded 0 at connect like a new
Policy; the control message {"__reset__": True, "seed": S} reseeds it and is answered {"reset":
True, "seed": S}. PolicyClient.seed_sampler sends it, which is how eval.py --server reproduces the
in-process episodes seed for seed. Requests run one at a time in a worker thread (one model), so
the event loop keeps answering other clients; a client that disconnects mid-episode leaves the
others untouched. Latency: a log line per connection when it closes and every `summary_every`
requests (p50 / p90 / max of the model time), one line per request at DEBUG.

Dependencies (requirements-deploy.txt): websockets, msgpack. Training never imports this module.
"""

from __future__ import annotations

import asyncio
import errno
import http
import logging
import signal
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import msgpack
import numpy as np
import websockets

log = logging.getLogger(__name__)

KEY_MAPPINGS = ("checkpoint", "openpi_libero")  # --keys
# What openpi's examples/libero/main.py sends: agent and wrist camera (the checkpoint's first and second
# camera), state, prompt.
OPENPI_LIBERO_KEYS = {"images": ["observation/image", "observation/wrist_image"], "state": "observation/state",
                      "instruction": "prompt"}
RESET = "__reset__"


class ServerError(RuntimeError):
    """The server cannot start (port in use), cannot be reached, or refused a request: one line."""


# ---------------------------------------------------------------------------------- wire format

def _encode(obj):
    """msgpack's hook for what it cannot pack: numpy arrays and scalars, as openpi encodes them."""
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in "VOc":
        raise ValueError(f"cannot send a numpy array of dtype {obj.dtype}")
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def _decode(obj: dict):
    if b"__ndarray__" in obj:
        dtype = np.dtype(obj[b"dtype"])
        if dtype.kind in "VO":  # never build Python objects from a peer's bytes
            raise ValueError(f"refusing a numpy array of dtype {dtype}")
        # A copy: arrays over the message's bytes are read-only.
        return np.frombuffer(obj[b"data"], dtype=dtype).reshape(obj[b"shape"]).copy()
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(obj) -> bytes:
    return msgpack.packb(obj, default=_encode)


def unpackb(data: bytes):
    if isinstance(data, str):
        raise ValueError("got a text frame; send the observation as msgpack bytes (a binary frame)")
    try:
        return msgpack.unpackb(data, object_hook=_decode)
    except ValueError as err:  # msgpack's errors (some with no message) and a bad array
        raise ValueError(f"cannot decode the message ({_one_line(err).rstrip(': ')}); send msgpack with numpy arrays "
                         f"as openpi_client.msgpack_numpy packs them") from None


def _one_line(err: BaseException) -> str:
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)  # KeyError's str() adds quotes
    return f"{type(err).__name__}: {text}".replace("\n", " ")


# ---------------------------------------------------------------------------------- the server

class LatencyLog:
    """Model time per request: a summary line (p50 / p90 / max) every `every` requests."""

    def __init__(self, every: int = 100):
        self.every, self.count, self.recent = every, 0, []

    def add(self, ms: float) -> None:
        self.count += 1
        self.recent.append(ms)
        if len(self.recent) >= self.every:
            log.info("%d requests served; the last %d: %s", self.count, len(self.recent), summary(self.recent))
            self.recent = []


def summary(ms) -> str:
    p50, p90 = np.percentile(ms, [50, 90])
    return f"infer p50 {p50:.1f} ms, p90 {p90:.1f} ms, max {max(ms):.1f} ms"


class PolicyServer:
    """One Policy served to any number of websocket clients (protocol: the module docstring).

    server = PolicyServer(policy)
    server.serve_forever("0.0.0.0", 8000)       # the CLI (scripts/serve_policy.py)
    port = server.start("127.0.0.1", 0)         # or from a background thread (tests, notebooks); stop()
    """

    def __init__(self, policy, keys: str = "checkpoint", summary_every: int = 100):
        if keys not in KEY_MAPPINGS:
            raise ValueError(f"unknown key mapping {keys!r}; choose from {list(KEY_MAPPINGS)}")
        data, model = policy.cfg.data, policy.cfg.model
        cameras = list(data.camera_keys)
        if keys == "openpi_libero":
            if len(cameras) > 2:
                raise ServerError(f"--keys openpi_libero maps two cameras, the checkpoint reads {len(cameras)} "
                                  f"({cameras}); serve it with --keys checkpoint")
            wire = {**OPENPI_LIBERO_KEYS, "images": OPENPI_LIBERO_KEYS["images"][:len(cameras)]}
        else:  # the instruction may also come as "task", as Policy takes it
            wire = {"images": cameras, "state": data.state_key, "instruction": "instruction"}
        if model.state_dim == 0:
            wire["state"] = None
        self.policy, self.keys, self.state_key = policy, keys, wire["state"]
        self.key_map = dict(zip(wire["images"], cameras))  # {wire key: the Policy's key}
        if self.state_key:
            self.key_map[self.state_key] = data.state_key
        self.key_map[wire["instruction"]] = "instruction"
        self.metadata = {
            "server": "vggt-vla", "checkpoint": str(getattr(policy, "checkpoint_path", "in memory")), "keys": keys,
            "observation_keys": wire,
            "state_dim": model.state_dim, "action_dim": model.action_head.action_dim,
            "chunk_size": model.action_head.chunk_size, "n_action_steps": policy.n_action_steps,
            "temporal_ensemble": policy.temporal_ensemble_coeff,
            "sim": {k: getattr(policy.cfg.sim, k)
                    for k in ("name", "suite", "camera_size", "fast_render", "max_mesh_faces")}}
        self.latency = LatencyLog(summary_every)
        # One worker: requests reach the model one at a time, off the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy")
        self.port: Optional[int] = None

    # -------------------------------------------------------------- a request
    def _observation(self, obs) -> dict:
        """The wire observation under the Policy's keys; missing keys and a state of the wrong size
        are named by their wire names."""
        if not isinstance(obs, dict):
            raise ValueError(f"an observation is a msgpack map {{key: value}}, got {type(obs).__name__}")
        if self.keys == "checkpoint":
            return obs  # the Policy's own keys: it names what is missing
        missing = [k for k in self.key_map if k not in obs]
        if missing:
            raise KeyError(f"observation lacks {missing}; it has {sorted(obs)} (--keys {self.keys} reads "
                           f"{list(self.key_map)})")
        if self.state_key:
            dims = np.asarray(obs[self.state_key]).size
            state_dim = self.policy.cfg.model.state_dim
            if dims != state_dim:
                raise ValueError(f"'{self.state_key}' has {dims} values; the checkpoint was trained on a "
                                 f"{state_dim}-D state ({self.policy.cfg.data.state_key}), send that layout")
        return {mine: obs[wire] for wire, mine in self.key_map.items()}

    def _answer(self, message, generator) -> dict:
        """Runs in the worker thread: decode, then a reset or one chunk."""
        obs = unpackb(message)
        if isinstance(obs, dict) and obs.get(RESET):
            seed = obs.get("seed")
            if seed is not None:
                generator.manual_seed(int(seed))
            return {"reset": True, "seed": seed}
        obs = self._observation(obs)
        start = time.perf_counter()
        chunk = self.policy.predict_action_chunk(obs, generator)  # [T, A]
        infer_ms = (time.perf_counter() - start) * 1e3
        return {"actions": chunk, "server_timing": {"infer_ms": infer_ms}}

    async def _handler(self, ws) -> None:
        import torch

        peer = "%s:%s" % ws.remote_address[:2]
        generator = torch.Generator(device=self.policy.device).manual_seed(0)  # as a new Policy's
        loop, prev_total_ms = asyncio.get_running_loop(), None
        served, count = deque(maxlen=10_000), 0  # this client's model times (the last 10 000: memory stays bounded)
        log.info("client %s connected", peer)
        try:
            await ws.send(packb(self.metadata))
            async for message in ws:
                start = time.monotonic()
                try:
                    reply = await loop.run_in_executor(self._executor, self._answer, message, generator)
                except Exception as err:  # the client's problem (or a bug): tell it, go on serving
                    text = _one_line(err)
                    log.warning("client %s: %s", peer, text,
                                exc_info=not isinstance(err, (ValueError, KeyError, TypeError)))
                    await ws.send(text)  # a text frame: WebsocketClientPolicy.infer raises it
                    continue
                if "actions" in reply:
                    timing = reply["server_timing"]
                    if prev_total_ms is not None:
                        timing["prev_total_ms"] = prev_total_ms  # the previous request, with its send
                    served.append(timing["infer_ms"])
                    count += 1
                    self.latency.add(timing["infer_ms"])
                    log.debug("client %s: infer %.1f ms", peer, timing["infer_ms"])
                await ws.send(packb(reply))
                prev_total_ms = (time.monotonic() - start) * 1e3
        except websockets.ConnectionClosed:
            pass  # a client leaving mid-episode is normal
        log.info("client %s left after %d requests%s", peer, count, f" ({summary(served)})" if served else "")

    # -------------------------------------------------------------- running
    async def _serve(self, host: str, port: int, ready: Optional[threading.Event] = None,
                     signals: bool = False) -> None:
        from websockets.asyncio.server import serve

        self._loop, self._stopped = asyncio.get_running_loop(), asyncio.Event()
        if signals:  # Ctrl-C, or a scheduler's SIGTERM: close the connections (1001, going away), then return
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._loop.add_signal_handler(sig, self._stopped.set)
        try:
            server = await serve(self._handler, host, port, compression=None, max_size=None,
                                 process_request=_health_check)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ServerError(f"cannot listen on {host}:{port}: the port is in use (another server?); choose "
                                  f"another --port, or stop that process") from None
            reason = err.strerror or str(err)  # e.g. an unknown host
            raise ServerError(f"cannot listen on {host}:{port}: {reason}; check --host and --port") from None
        async with server:
            self.port = server.sockets[0].getsockname()[1]  # port 0: the one the OS chose
            log.info("serving %s on ws://%s:%d (keys: %s, reads %s)", self.metadata["checkpoint"], host, self.port,
                     self.keys, list(self.key_map))
            if ready is not None:
                ready.set()
            await self._stopped.wait()
        log.info("stopped")

    def serve_forever(self, host: str = "0.0.0.0", port: int = 8000) -> None:
        """Serve until SIGINT or SIGTERM; ServerError when the address cannot be used."""
        asyncio.run(self._serve(host, port, signals=True))

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve from a daemon thread; returns the port (port 0: a free one). stop() ends it."""
        ready, failure = threading.Event(), []

        def run():
            try:
                asyncio.run(self._serve(host, port, ready))
            except BaseException as err:
                failure.append(err)
                ready.set()

        self._thread = threading.Thread(target=run, name="policy-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.port

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join()


def _health_check(connection, request):
    """GET /healthz answers 200 OK (a load balancer's probe), as openpi's server does."""
    if request.path == "/healthz":
        return connection.respond(http.HTTPStatus.OK, "OK\n")
    return None


def serve(checkpoint: str, host: str = "0.0.0.0", port: int = 8000, device: str = "auto",
          keys: str = "checkpoint", onnx_path: Optional[str] = None) -> None:
    """scripts/serve_policy.py: load the checkpoint (its chunks predicted by the ONNX graph
    `onnx_path` in ONNX Runtime when given), serve it until interrupted. Raises CheckpointError /
    ExportError / ServerError (one line) when it cannot start."""
    from vggt_vla.policy import Policy

    policy = Policy.from_pretrained(checkpoint, device=device, onnx_path=onnx_path)
    log.info("loaded %s on %s%s", policy.checkpoint_path, policy.device,
             f" (chunks from {onnx_path}, ONNX Runtime)" if onnx_path else "")
    PolicyServer(policy, keys).serve_forever(host, port)


# ---------------------------------------------------------------------------------- the client

class PolicyClient:
    """A vggt-vla policy server as an actor: select_action(obs) -> [A], like Policy, with the action
    queue (or temporal ensemble) kept here, from the server's checkpoint settings unless given.

    with PolicyClient("ws://localhost:8000") as client:
        client.reset()
        action = client.select_action(obs)
    """

    def __init__(self, uri: str, n_action_steps: Optional[int] = None,
                 temporal_ensemble: Optional[float | str] = None, open_timeout: float = 10.0):
        from websockets.sync.client import connect

        from vggt_vla.config import InferenceConfig
        from vggt_vla.policy import ActionSchedule

        self.uri = uri
        try:
            self._ws = connect(uri, compression=None, max_size=None, open_timeout=open_timeout)
            self.metadata = unpackb(self._ws.recv())
        except (OSError, TimeoutError, websockets.InvalidURI, websockets.InvalidHandshake,
                websockets.ConnectionClosed) as err:
            raise ServerError(f"no policy server at {uri} ({_one_line(err)}); start one with "
                              f"python scripts/serve_policy.py --checkpoint RUN_DIR") from None
        if not isinstance(self.metadata, dict) or self.metadata.get("server") != "vggt-vla":
            self.close()
            raise ServerError(f"{uri} is not a vggt-vla policy server (its metadata: {self.metadata!r:.200})")
        m = self.metadata
        inference = InferenceConfig(m["n_action_steps"], m["temporal_ensemble"]).overridden(
            n_action_steps, temporal_ensemble)
        inference.check_chunk(m["chunk_size"])
        self.n_action_steps, self.temporal_ensemble_coeff = inference.n_action_steps, inference.temporal_ensemble
        self.camera_keys = list(m["observation_keys"]["images"])  # what the server reads, in its order
        self.checkpoint_path = m["checkpoint"]  # on the server's machine
        self.schedule = ActionSchedule(inference)

    def infer(self, obs: dict) -> dict:
        """One request: {"actions": [T, A], "server_timing": {...}}. ServerError when refused."""
        try:
            self._ws.send(packb(obs))
            reply = self._ws.recv()
        except websockets.ConnectionClosed as err:
            raise ServerError(f"the policy server at {self.uri} closed the connection ({_one_line(err)})") from None
        if isinstance(reply, str):
            raise ServerError(f"the policy server refused the request: {reply}")
        return unpackb(reply)

    def seed_sampler(self, seed: int) -> None:
        """Reseed this connection's sampler on the server (what policy.generator.manual_seed does in
        process), so sampled chunks repeat seed for seed."""
        if not self.infer({RESET: True, "seed": int(seed)}).get("reset"):
            raise ServerError(f"the server at {self.uri} did not acknowledge the reset")

    def reset(self) -> None:
        """Forget queued actions; call at the start of every episode."""
        self.schedule.reset()

    def select_action(self, obs: dict) -> np.ndarray:
        """The action to execute now, [A]. A NaN/inf array raises NonFiniteObservation here, even
        when actions are queued, as Policy.select_action does."""
        from vggt_vla.policy import NonFiniteObservation

        for key, value in obs.items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
                raise NonFiniteObservation(f"observation['{key}'] holds NaN/inf; the policy refuses to act on it "
                                           f"(queued actions are kept)")
        return self.schedule.next(lambda: self.infer(obs)["actions"])

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> "PolicyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
