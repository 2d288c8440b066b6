"""One demo episode driven through a vggt-vla policy server by openpi's published client, unchanged.

Run by tests/test_serving.py under the interpreter of a venv holding openpi-client 0.1.2 (it pins
numpy<2, so it cannot share the project's venv; .ci/run builds .venv-openpi):

    OPENPI_CLIENT_PYTHON python tests/openpi_client_episode.py ws://127.0.0.1:PORT SEED MAX_STEPS

The server runs with --keys openpi_libero: this script sends the keys openpi's
examples/libero/main.py sends. It prints one JSON line: the server's metadata, the errors that
openpi's client raised for a NaN and an incomplete observation, and the executed actions of the
episode (openpi's ActionChunkBroker executing each chunk's first n_action_steps actions).
"""

import json
import sys

import numpy as np
from openpi_client.action_chunk_broker import ActionChunkBroker
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from vggt_vla.constants import AGENT_VIEW, STATE_KEY, WRIST_VIEW
from vggt_vla.sim.demo_env import DemoEnv
from vggt_vla.sim.protocol import Episode


def openpi_libero(obs: dict) -> dict:
    """A demo observation under openpi's LIBERO example keys."""
    return {"observation/image": obs[AGENT_VIEW], "observation/wrist_image": obs[WRIST_VIEW],
            "observation/state": obs[STATE_KEY], "prompt": obs["instruction"]}


def main(uri: str, seed: int, max_steps: int) -> dict:
    client = WebsocketClientPolicy(uri)
    metadata = client.get_server_metadata()
    env = DemoEnv(image_size=32, max_steps=max_steps)
    obs = openpi_libero(env.start(Episode(seed=seed)))
    errors = []
    for bad in ({**obs, "observation/state": np.full(8, np.nan, np.float32)}, {"prompt": obs["prompt"]}):
        try:
            client.infer(bad)
        except RuntimeError as err:  # the server's text frame
            errors.append(str(err))
    # The server's reset extension, sent as a plain observation dict: the sampler from the episode seed.
    ack = client.infer({"__reset__": True, "seed": seed})
    policy = ActionChunkBroker(client, action_horizon=metadata["n_action_steps"])
    policy.reset()
    actions, timings = [], []
    while not env.done:
        result = policy.infer(obs)
        actions.append(np.asarray(result["actions"]).tolist())  # [A]
        timings.append(result["server_timing"]["infer_ms"])
        obs = openpi_libero(env.step(np.asarray(result["actions"]))[0])
    return {"metadata": metadata, "errors": errors, "ack": ack, "actions": actions, "steps": env.steps,
            "success": bool(env.success), "infer_ms": timings}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
