"""The policy server (vggt_vla/serving.py, scripts/serve_policy.py): openpi's wire protocol, closed
loop through the server equal to in process seed for seed, errors answered without stopping,
several clients at once, one-line startup errors.

The checkpoint is a tiny untrained flow-matching model (its chunks depend on the sampler's seed,
so seed-for-seed equality is a real check). openpi's own client: test_openpi_client_drives_an_episode
runs it in a separate venv; enable it with

    python -m venv .venv-openpi && .venv-openpi/bin/pip install openpi-client==0.1.2 typing_extensions 'numpy<2'
    OPENPI_CLIENT_PYTHON=.venv-openpi/bin/python python -m pytest tests/test_serving.py

(.ci/run does both.) Without OPENPI_CLIENT_PYTHON that test skips, naming these commands.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

DEPLOY = "serving needs requirements-deploy.txt: pip install -r requirements-deploy.txt"
pytest.importorskip("websockets", reason=DEPLOY)
pytest.importorskip("msgpack", reason=DEPLOY)

import msgpack  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from conftest import ROOT, run_script, tiny_config  # noqa: E402
from test_policy import observation, with_inference, write_checkpoint  # noqa: E402
from test_reliability import one_error_line  # noqa: E402
from vggt_vla import closed_loop  # noqa: E402
from vggt_vla.closed_loop import ClosedLoopSpec, closed_loop_eval  # noqa: E402
from vggt_vla.constants import STATE_KEY  # noqa: E402
from vggt_vla.policy import NonFiniteObservation, Policy  # noqa: E402
from vggt_vla.serving import PolicyClient, PolicyServer, ServerError, packb, unpackb  # noqa: E402
from vggt_vla.sim import demo_env  # noqa: E402

EPISODE = dict(sim="demo", episodes_per_task=2, seed=700, camera_size=32, max_steps=12)


@pytest.fixture(scope="module")
def checkpoint(tiny_qwen3, tmp_path_factory):
    """Flow matching (sampled chunks), a queue of 2 of each chunk of 5."""
    cfg = with_inference(tiny_config(tiny_qwen3, action_head={"type": "flow_matching"}), n_action_steps=2)
    return str(write_checkpoint(tmp_path_factory.mktemp("serving") / "tiny.pt", cfg))


@pytest.fixture(scope="module")
def server(checkpoint):
    """ws:// URI of a server (its own Policy) running in a thread of this process."""
    serving = PolicyServer(Policy.from_pretrained(checkpoint, device="cpu"))
    port = serving.start("127.0.0.1", 0)
    yield f"ws://127.0.0.1:{port}"
    serving.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------- protocol
def test_arrays_travel_as_openpi_encodes_them():
    """openpi_client.msgpack_numpy's layout: a map with byte-string keys, dtype.str, the shape."""
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(packb({"a": arr, "s": np.float32(1.5), "t": "x"}))
    assert raw["a"] == {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": "<f4", b"shape": [2, 3]}
    assert raw["s"] == {b"__npgeneric__": True, b"data": 1.5, b"dtype": "<f4"} and raw["t"] == "x"
    back = unpackb(packb({"a": arr, "s": np.float32(1.5)}))
    assert np.array_equal(back["a"], arr) and back["a"].dtype == np.float32 and back["a"].flags.writeable
    assert back["s"] == np.float32(1.5) and isinstance(back["s"], np.float32)
    with pytest.raises(ValueError, match="dtype object"):
        unpackb(msgpack.packb({b"__ndarray__": True, b"data": b"", b"dtype": "|O", b"shape": [0]}))


def test_metadata_then_chunks_with_timing(server, checkpoint):
    with connect(server, compression=None, max_size=None) as ws:
        meta = unpackb(ws.recv())
        assert meta["server"] == "vggt-vla" and meta["checkpoint"] == checkpoint and meta["keys"] == "checkpoint"
        assert (meta["chunk_size"], meta["action_dim"], meta["state_dim"], meta["n_action_steps"]) == (5, 7, 8, 2)
        assert meta["observation_keys"]["images"] == ["observation.images.image", "observation.images.wrist_image"]
        replies = []
        for _ in range(2):
            ws.send(packb(observation(tiny_config("x"))))
            replies.append(unpackb(ws.recv()))
    assert replies[0]["actions"].shape == (5, 7) and np.isfinite(replies[0]["actions"]).all()
    assert replies[0]["server_timing"]["infer_ms"] > 0 and "prev_total_ms" not in replies[0]["server_timing"]
    assert replies[1]["server_timing"]["prev_total_ms"] >= replies[0]["server_timing"]["infer_ms"]


# ------------------------------------------------------------------------------- closed loop
@pytest.fixture
def recorded_actions(monkeypatch):
    """Every action the demo env executes, in order (closed loop in this process)."""
    actions = []

    def make_env(options, task):
        env = demo_env.make_demo_env(options, task)
        step = env.step
        env.step = lambda action: actions.append(np.array(action, dtype=np.float64)) or step(action)
        return env

    monkeypatch.setitem(closed_loop.SIMULATORS, "demo", dataclasses.replace(demo_env.SIMULATOR, make_env=make_env))
    return actions


def strip(records):
    return [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in records]


@pytest.mark.parametrize("ensemble", [None, 0.01], ids=["queue", "temporal_ensemble"])
def test_closed_loop_through_the_server_equals_in_process(server, checkpoint, recorded_actions, ensemble):
    """The same 2 demo episodes: identical records and identical executed actions, seed for seed,
    with the checkpoint's queue of 2 and with temporal ensembling (both run client side)."""
    spec = dict(EPISODE, policy=checkpoint, temporal_ensemble=ensemble)
    local = closed_loop_eval(ClosedLoopSpec(**spec, device="cpu"), progress=False)
    here = list(recorded_actions)
    recorded_actions.clear()
    with PolicyClient(server, temporal_ensemble=ensemble) as client:
        remote = closed_loop_eval(ClosedLoopSpec(**spec, server=server), policy=client, progress=False)
    assert not local["errors"] and not remote["errors"]
    assert strip(local["episode_records"]) == strip(remote["episode_records"])
    assert local["success_rate"] == remote["success_rate"]
    assert len(here) == len(recorded_actions) > 0
    assert all(np.array_equal(a, b) for a, b in zip(here, recorded_actions))
    # Not vacuous: the sampler's seed changes the chunk, so the server must reseed as the runner does.
    policy = Policy.from_pretrained(checkpoint, device="cpu")
    obs = observation(policy.cfg)
    chunks = [policy.predict_action_chunk(obs, torch.Generator().manual_seed(s)) for s in (1, 2)]
    assert not np.allclose(*chunks)


def test_eval_cli_through_the_server(server, checkpoint, tmp_path):
    out = run_script("scripts/eval.py", "--sim", "demo", "--server", server, "--episodes", "2", "--seed", "700",
                     "--camera_size", "32", "--max_steps", "12", "--workers", "2", "--json", tmp_path / "remote.json",
                     timeout=300)  # two worker processes, one connection each
    assert out.returncode == 0, out.stderr[-2000:]
    remote = json.loads((tmp_path / "remote.json").read_text())
    local = closed_loop_eval(ClosedLoopSpec(**EPISODE, policy=checkpoint, device="cpu"), progress=False)
    assert strip(remote["episode_records"]) == strip(local["episode_records"])
    assert remote["settings"]["server"] == server and remote["checkpoint"] == checkpoint
    dead = run_script("scripts/eval.py", "--sim", "demo", "--server", f"ws://127.0.0.1:{free_port()}", timeout=300)
    assert "no policy server at ws://127.0.0.1:" in one_error_line(dead)


# ------------------------------------------------------------------------------- errors
def test_bad_requests_get_a_text_frame_and_the_server_goes_on(server):
    good = observation(tiny_config("x"))
    bad = {
        "malformed msgpack": (b"\xc1\x00", "cannot decode the message (FormatError)"),  # 0xc1 is never used by msgpack
        "a text frame": ("hello", "send the observation as msgpack bytes"),
        "not a map": (packb([1, 2, 3]), "an observation is a msgpack map"),
        "NaN state": (packb({**good, STATE_KEY: np.full(8, np.nan, np.float32)}), "NonFiniteObservation"),
        "a missing camera": (packb({k: v for k, v in good.items() if k != "observation.images.image"}),
                             "observation lacks camera(s) ['observation.images.image']"),
        "a wrong image shape": (packb({**good, "observation.images.image": np.zeros((32, 32), np.uint8)}),
                                "expected uint8 RGB frames"),
        "a wrong state size": (packb({**good, STATE_KEY: np.zeros(7, np.float32)}), "state has 7 dims"),
        "a wrong buffer size": (msgpack.packb({b"__ndarray__": True, b"data": b"\x00" * 3, b"dtype": "<f4",
                                               b"shape": [2]}), "buffer size must be a multiple"),
    }
    with connect(server, compression=None, max_size=None) as ws:
        unpackb(ws.recv())  # metadata
        for name, (message, expected) in bad.items():
            ws.send(message)
            reply = ws.recv()
            assert isinstance(reply, str) and expected in reply and "\n" not in reply, (name, reply)
        ws.send(packb(good))
        assert unpackb(ws.recv())["actions"].shape == (5, 7)


def test_the_client_raises_what_the_server_says_and_checks_nan_first(server):
    good = observation(tiny_config("x"))
    with PolicyClient(server) as client:
        with pytest.raises(ServerError, match="state has 7 dims"):
            client.infer({**good, STATE_KEY: np.zeros(7, np.float32)})
        client.select_action(good)  # a chunk queued
        with pytest.raises(NonFiniteObservation, match=r"observation\['observation.state'\] holds NaN"):
            client.select_action({**good, STATE_KEY: np.full(8, np.nan, np.float32)})
        assert client.select_action(good).shape == (7,)  # the queue was kept


def test_openpi_keys_are_mapped_and_a_wrong_state_is_named(checkpoint):
    policy = Policy.from_pretrained(checkpoint, device="cpu")
    serving = PolicyServer(policy, keys="openpi_libero")
    obs = observation(policy.cfg)
    wire = {"observation/image": obs["observation.images.image"], "observation/wrist_image":
            obs["observation.images.wrist_image"], "observation/state": obs[STATE_KEY], "prompt": obs["instruction"]}
    generator = torch.Generator().manual_seed(3)
    chunk = serving._answer(packb(wire), generator)["actions"]
    assert np.array_equal(chunk, policy.predict_action_chunk(obs, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match=r"'observation/state' has 7 values; the checkpoint was trained on a 8-D"):
        serving._answer(packb({**wire, "observation/state": np.zeros(7)}), generator)
    with pytest.raises(KeyError, match=r"lacks \['prompt'\]"):
        serving._answer(packb({k: v for k, v in wire.items() if k != "prompt"}), generator)
    assert serving.metadata["observation_keys"] == {"images": ["observation/image", "observation/wrist_image"],
                                                     "state": "observation/state", "instruction": "prompt"}


# ------------------------------------------------------------------------------- several clients
def test_clients_have_their_own_sampler_and_do_not_wait_for_each_other(checkpoint):
    """Two clients in threads, reseeded differently, each get the chunks a Policy seeded alike gets;
    a third connects and gets its metadata while a slow request runs; a client leaving mid-episode
    changes nothing for the others."""
    policy = Policy.from_pretrained(checkpoint, device="cpu")
    obs = observation(policy.cfg)
    expected = {}
    for seed in (11, 12):
        g = torch.Generator().manual_seed(seed)
        expected[seed] = [policy.predict_action_chunk(obs, g) for _ in range(3)]

    slow = threading.Event()
    real = policy.predict_action_chunk

    def predict(o, generator=None):
        if slow.is_set():
            time.sleep(2.0)
        return real(o, generator)

    policy.predict_action_chunk = predict
    serving = PolicyServer(policy)
    uri = f"ws://127.0.0.1:{serving.start('127.0.0.1', 0)}"
    try:
        got = {}

        def run(seed):
            with PolicyClient(uri) as client:
                client.seed_sampler(seed)
                got[seed] = [client.infer(obs)["actions"] for _ in range(3)]

        threads = [threading.Thread(target=run, args=(s,)) for s in (11, 12)]
        leaver = PolicyClient(uri)
        leaver.infer(obs)
        leaver.close()  # mid-episode
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for seed in (11, 12):
            assert all(np.array_equal(a, b) for a, b in zip(got[seed], expected[seed])), seed

        slow.set()
        busy = PolicyClient(uri)
        request = threading.Thread(target=busy.infer, args=(obs,))
        request.start()
        time.sleep(0.2)  # the slow request is in the worker thread now
        start = time.perf_counter()
        PolicyClient(uri).close()  # connect + metadata: the event loop is free
        assert time.perf_counter() - start < 1.0  # the request holds the model for 2 s
        request.join()
        busy.close()
    finally:
        serving.stop()


# ------------------------------------------------------------------------------- the CLI
def test_cli_refuses_a_bad_checkpoint_and_a_port_in_use_and_stops_on_sigterm(checkpoint, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert "broken.pt" in one_error_line(run_script("scripts/serve_policy.py", "--checkpoint", broken,
                                                    "--port", str(free_port()), timeout=300))
    port = free_port()
    command = ["scripts/serve_policy.py", "--checkpoint", checkpoint, "--host", "127.0.0.1", "--port", str(port),
               "--device", "cpu"]
    first = subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        for line in first.stdout:  # the log goes to stdout
            if f"on ws://127.0.0.1:{port}" in line:
                break
        with PolicyClient(f"ws://127.0.0.1:{port}") as client:
            line = one_error_line(run_script(*command, timeout=300))  # a second server on the same port
            assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in line and "another --port" in line, line
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=60) == 0
            with pytest.raises(ServerError, match="closed the connection"):
                client.infer(observation(tiny_config("x")))
    finally:
        first.kill()
        first.wait()


# ------------------------------------------------------------------------------- openpi's client
def test_openpi_client_drives_an_episode(checkpoint):
    """openpi-client 0.1.2's WebsocketClientPolicy + ActionChunkBroker, unchanged, in their own venv,
    drive a demo episode through a --keys openpi_libero server: errors arrive as RuntimeError, and
    the executed actions equal the in-process Policy's for the same episode seed."""
    python = os.environ.get("OPENPI_CLIENT_PYTHON")
    if not python:
        pytest.skip("openpi's client needs its own venv: python -m venv .venv-openpi && .venv-openpi/bin/pip "
                    "install openpi-client==0.1.2 typing_extensions 'numpy<2', then set "
                    "OPENPI_CLIENT_PYTHON=.venv-openpi/bin/python")
    policy = Policy.from_pretrained(checkpoint, device="cpu")
    serving = PolicyServer(Policy.from_pretrained(checkpoint, device="cpu"), keys="openpi_libero")
    port = serving.start("127.0.0.1", 0)
    try:
        out = subprocess.run([python, str(ROOT / "tests" / "openpi_client_episode.py"), f"ws://127.0.0.1:{port}",
                              "700", "12"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        serving.stop()
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["metadata"]["keys"] == "openpi_libero" and result["ack"] == {"reset": True, "seed": 700}
    nan, missing = result["errors"]
    assert "Error in inference server" in nan and "NonFiniteObservation" in nan
    assert "lacks ['observation/image', 'observation/wrist_image', 'observation/state']" in missing
    assert result["steps"] == len(result["actions"]) == 12 and all(ms > 0 for ms in result["infer_ms"])

    env = demo_env.DemoEnv(image_size=32, max_steps=12)  # the same episode in process
    obs = env.start(demo_env.Episode(seed=700))
    policy.generator.manual_seed(700)
    policy.reset()
    actions = []
    while not env.done:
        actions.append(policy.select_action(obs))
        obs, _ = env.step(actions[-1])
    assert np.array_equal(np.asarray(result["actions"]), np.stack(actions).astype(np.float64))
