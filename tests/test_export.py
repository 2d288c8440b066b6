"""ONNX export (vggt_vla/export.py, scripts/export_onnx.py) and the Policy's ONNX Runtime backend.

The models are the named configs' architectures at toy sizes (configs/train_demo.yaml and
configs/train_libero_cpu.yaml with small widths: the same classes, options and heads), with a tiny
BERT in place of all-MiniLM-L6-v2; the parity frames come from a tiny demo dataset. Needs
requirements-deploy.txt (onnx, onnxruntime, onnxscript); skipped without it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

DEPLOY = "ONNX export needs requirements-deploy.txt (pip install -r requirements-deploy.txt)"
pytest.importorskip("onnx", reason=DEPLOY)
pytest.importorskip("onnxruntime", reason=DEPLOY)
pytest.importorskip("onnxscript", reason=DEPLOY)

from conftest import run_script, tiny_config  # noqa: E402
from test_policy import observation, write_checkpoint  # noqa: E402
from test_reliability import one_error_line  # noqa: E402
from vggt_vla.checkpoint import atomic_torch_save  # noqa: E402
from vggt_vla.config import load_config  # noqa: E402
from vggt_vla.export import ExportError, OnnxModel, example_batch, export_blockers, export_graph, parity  # noqa: E402
from vggt_vla.models.vla_model import VLAModel  # noqa: E402
from vggt_vla.policy import Policy  # noqa: E402

TOLERANCE = 1e-4
# The named configs at toy sizes: every architectural option stays as the YAML sets it.
SHRINK = ["model.dim=32", "model.num_action_queries=4", "model.spatial_keypoints=4", "model.language.max_length=16",
          "model.simple_backbone.depth=2", "model.action_head.hidden_dim=64", "model.action_head.query_proj_dim=8"]
TOY = {"demo": SHRINK + ["model.vision.image_size=32"],  # 8 px patches (4 x 4), linear_pool stem, goal head
       "libero_cpu": SHRINK + ["model.vision.image_size=64",  # 16 px patches (4 x 4), augmentation
                               "sim.demos_per_task=0"]}  # the toy dataset is not a generated one


def toy_config(name: str, language_model: str, dataset: str):
    return load_config(name, TOY[name] + [f"model.language.language_model={language_model}",
                                          f"data.dataset_root={dataset}"])


@pytest.fixture(scope="module", params=sorted(TOY))
def exported(request, tiny_bert, demo_dataset, tmp_path_factory):
    """(checkpoint, .onnx, the CLI's output) of a toy named config, exported by scripts/export_onnx.py."""
    folder = tmp_path_factory.mktemp(f"export_{request.param}")
    ckpt = write_checkpoint(folder / "model.pt", toy_config(request.param, tiny_bert, demo_dataset))
    out = run_script("scripts/export_onnx.py", "--checkpoint", ckpt, "--out", folder / "policy.onnx")
    assert out.returncode == 0, out.stdout + out.stderr
    return ckpt, folder / "policy.onnx", out.stdout


def test_the_cli_exports_a_graph_that_matches_pytorch_on_dataset_frames(exported):
    ckpt, onnx_path, stdout = exported
    assert onnx_path.is_file() and not list(onnx_path.parent.glob(".*partial"))
    found = re.search(r"parity with PyTorch on (\d+) frames of (\S+): max \|onnx - torch\| = (\S+)", stdout)
    assert found, stdout
    assert int(found.group(1)) >= 2 and float(found.group(3)) <= TOLERANCE


def test_a_policy_on_the_onnx_graph_acts_as_the_pytorch_policy(exported):
    ckpt, onnx_path, _ = exported
    eager = Policy.from_pretrained(ckpt, device="cpu")
    runtime = Policy.from_pretrained(ckpt, onnx_path=str(onnx_path))
    assert runtime.runtime is not None and eager.runtime is None
    instructions = ["pick up the black bowl", "push the red cube left of the plate", ""]
    lm_before = runtime.model.language.num_lm_forwards
    rng = np.random.default_rng(1)
    for step in range(6):
        obs = {**observation(eager.cfg), "instruction": instructions[step % 3]}
        for key in eager.cfg.data.camera_keys:
            obs[key] = rng.integers(0, 256, obs[key].shape, dtype=np.uint8)
        obs["observation.state"] = rng.normal(size=eager.cfg.model.state_dim).astype(np.float32)
        want, got = eager.predict_action_chunk(obs), runtime.predict_action_chunk(obs)
        assert got.shape == want.shape == (eager.cfg.model.action_head.chunk_size, 7)
        assert np.abs(got - want).max() <= TOLERANCE
    # the language model ran once per instruction, outside the graph
    assert runtime.model.language.num_lm_forwards - lm_before == len(instructions)
    runtime.reset()
    eager.reset()
    obs = observation(eager.cfg)
    for _ in range(3):  # the action queue runs on the ONNX chunks as on the eager ones
        assert np.abs(runtime.select_action(obs) - eager.select_action(obs)).max() <= TOLERANCE


def test_the_server_serves_the_onnx_graph(exported):
    """serve_policy.py --onnx: the server's chunks are ONNX Runtime's, equal to PyTorch's within the
    tolerance; a missing graph stops the CLI with one line."""
    pytest.importorskip("websockets", reason=DEPLOY)
    from vggt_vla.serving import PolicyClient, PolicyServer

    ckpt, onnx_path, _ = exported
    eager = Policy.from_pretrained(ckpt, device="cpu")
    server = PolicyServer(Policy.from_pretrained(ckpt, onnx_path=str(onnx_path)))
    port = server.start("127.0.0.1", 0)
    try:
        with PolicyClient(f"ws://127.0.0.1:{port}") as client:
            obs = observation(eager.cfg)
            got = client.infer(obs)["actions"]
            assert np.abs(got - eager.predict_action_chunk(obs)).max() <= TOLERANCE
    finally:
        server.stop()
    line = one_error_line(run_script("scripts/serve_policy.py", "--checkpoint", ckpt, "--onnx",
                                     onnx_path.parent / "missing.onnx", "--port", "0"))
    assert "missing.onnx" in line and "export_onnx.py" in line, line


def test_a_graph_from_other_weights_is_refused(exported):
    ckpt, onnx_path, _ = exported
    policy = Policy.from_pretrained(ckpt, device="cpu")
    with torch.no_grad():
        policy.model.action_queries.add_(1.0)  # another checkpoint of the same config
    with pytest.raises(ExportError, match="not exported from this checkpoint's weights"):
        policy.use_onnx(onnx_path)


def test_flow_matching_and_a_vision_tower_export_with_the_noise_as_an_input(tiny_bert, tiny_dinov2, tmp_path):
    """The sampler's noise is a graph input drawn as PyTorch draws it, so sampled chunks match seed for seed."""
    cfg = tiny_config(tiny_bert, action_head={"type": "flow_matching"},
                      vision={"use_vision_tower": True, "vision_tower_name": tiny_dinov2})
    torch.manual_seed(0)
    model = VLAModel(cfg.model).eval()
    export_graph(model, cfg, tmp_path / "flow.onnx")
    runtime = OnnxModel(tmp_path / "flow.onnx", model)
    assert runtime.names == ["images", "state", "language", "language_mask", "noise"]
    batches = [example_batch(cfg), {**example_batch(cfg), "instruction": ["move to the blue ball"]}]
    assert parity(model, runtime, batches) <= TOLERANCE
    first, second = (runtime.predict_action_chunk(batches[0], torch.Generator().manual_seed(s)) for s in (0, 1))
    assert (first - second).abs().max() > 1e-3  # the noise does reach the graph


def test_a_graph_over_onnx_file_limit_is_refused_naming_what_blocks_it():
    """configs/train_full.yaml: the VGGT-1B backbone's weights do not fit one ONNX file (built on
    the meta device: the real architecture's sizes, no memory, no weights)."""
    with torch.device("meta"):
        model = VLAModel(load_config("full").model, random_weights=True)
    (blocker,) = export_blockers(model)
    assert "2 GiB" in blocker and "backbone" in blocker and "PyTorch Policy" in blocker
    with pytest.raises(ExportError, match="cannot export this model to ONNX"):
        export_graph(model, load_config("full"), "unused.onnx")


def test_the_cli_refuses_bad_arguments_in_one_line(tiny_bert, demo_dataset, tmp_path):
    ckpt = write_checkpoint(tmp_path / "model.pt", toy_config("demo", tiny_bert, demo_dataset))
    line = one_error_line(run_script("scripts/export_onnx.py", "--checkpoint", ckpt, "--out", tmp_path))
    assert "--out" in line and "is a directory" in line
    line = one_error_line(run_script("scripts/export_onnx.py", "--checkpoint", tmp_path / "none",
                                     "--out", tmp_path / "a.onnx"))
    assert str(tmp_path / "none") in line
    line = one_error_line(run_script("scripts/export_onnx.py", "--checkpoint", ckpt, "--out", tmp_path / "a.onnx",
                                     "--dataset", tmp_path / "no_dataset"))
    assert "--dataset" in line and "parity" in line
    assert not (tmp_path / "a.onnx").exists()


def test_the_cli_writes_nothing_when_parity_fails(tiny_bert, demo_dataset, tmp_path):
    """A model whose chunk is scaled by 1e7 (with unit statistics): float32 rounding that is fine
    for the graph is then far above the tolerance, and the check must catch it."""
    ckpt = write_checkpoint(tmp_path / "model.pt", toy_config("libero_cpu", tiny_bert, demo_dataset))
    saved = torch.load(ckpt, weights_only=False)
    last = max((k for k in saved["model"] if k.startswith("head.mlp.") and k.endswith(".weight")),
               key=lambda k: int(k.split(".")[2]))
    saved["model"][last] = saved["model"][last] * 1e7
    atomic_torch_save(saved, ckpt)
    line = one_error_line(run_script("scripts/export_onnx.py", "--checkpoint", ckpt, "--out", tmp_path / "a.onnx"))
    assert "parity failed" in line and "was not written" in line
    assert not (tmp_path / "a.onnx").exists() and not list(tmp_path.glob(".*partial"))
