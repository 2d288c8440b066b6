"""The command-line scripts, run as a user would (subprocess, from the repo root)."""

import functools
import json

import pytest
import yaml

from conftest import run_script


run = functools.partial(run_script, timeout=300)


def tiny_yaml(tmp_path, language_model, **model):
    cfg = {"model": {"dim": 32, "num_action_queries": 4,
                     "vision": {"image_size": 32, "patch_size": 8},
                     "language": {"language_model": language_model, "fallback_language_model": None},
                     "simple_backbone": {"depth": 1, "num_heads": 4},
                     "action_head": {"chunk_size": 5, "hidden_dim": 32}, **model}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_test_model_prints_the_report(tmp_path, tiny_qwen3):
    out = run("scripts/test_model.py", "--config", str(tiny_yaml(tmp_path, tiny_qwen3)),
              "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "WARNING" not in text  # everything loaded for real
    for needle in ("language.model", "backbone", "TOTAL", "action_chunk", "[2, 5, 7]",
                   "vision_per_camera", "predict_action_chunk", "peak memory"):
        assert needle in text, needle
    assert (tmp_path / "r.json").exists()


def test_test_model_runs_a_config_with_the_goal_loss(tmp_path, tiny_qwen3):
    # The demo recipe trains with the goal loss, which needs batch["goal_state"] in the report's batch.
    out = run("scripts/test_model.py", "--config", str(tiny_yaml(tmp_path, tiny_qwen3)), "--set",
              "model.goal_loss_weight=8", "--set", "model.spatial_keypoints=4", "--set", "model.goal_from=keypoint")
    assert out.returncode == 0, out.stderr
    assert "goal" in out.stdout and "TOTAL" in out.stdout


def test_test_model_rejects_a_config_typo(tmp_path, tiny_qwen3):
    out = run("scripts/test_model.py", "--config", str(tiny_yaml(tmp_path, tiny_qwen3)),
              "--set", "model.dimm=3")
    assert out.returncode == 2 and "did you mean 'dim'" in out.stderr


def test_test_model_falls_back_to_random_weights_with_one_warning(tmp_path, tiny_qwen3):
    # The tower is a hub id that is not cached (and the hub is off): one WARNING, then the real
    # DINOv2-small architecture with random weights.
    path = tiny_yaml(tmp_path, tiny_qwen3, vision={"image_size": 28, "use_vision_tower": True,
                                                    "vision_tower_name": "facebook/dinov2-small"})
    out = run("scripts/test_model.py", "--config", str(path), "--set", "model.language.language_model=Qwen/Qwen2-0.5B")
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stdout.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "RANDOM weights" in warnings[0]
    assert "22,056,576" in out.stdout  # DINOv2-small's parameter count
    assert "494,032,768" in out.stdout  # Qwen2-0.5B's parameter count


def test_test_model_reports_a_language_model_fallback_once(tmp_path, tiny_qwen3):
    # The configured model is missing, its fallback (the tiny local one) loads.
    path = tiny_yaml(tmp_path, tiny_qwen3, language={"language_model": "missing-org/missing-model",
                                                      "fallback_language_model": tiny_qwen3})
    out = run("scripts/test_model.py", "--config", str(path))
    assert out.returncode == 0, out.stderr
    assert (out.stdout + out.stderr).count("LANGUAGE MODEL FALLBACK") == 1, out.stderr
    assert f"language model: {tiny_qwen3}" in out.stdout


def test_quick_start_without_the_hub_names_the_offline_pipelines(tmp_path, tiny_qwen3):
    # tiny_yaml keeps the default data section: a LIBERO dataset downloaded from the hub.
    import os
    import subprocess

    from conftest import ROOT

    out = subprocess.run(["bash", "scripts/quick_start.sh", str(tiny_yaml(tmp_path, tiny_qwen3)),
                          "--log_dir", str(tmp_path / "logs")], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    for option in ("bash scripts/quick_start.sh\n", "bash scripts/quick_start.sh configs/train_libero_cpu.yaml",
                   "--dataset_root /path/to/dataset"):
        assert option in out.stderr, option


@pytest.mark.heavy
@pytest.mark.parametrize("name", ["simple", "dinov2"])
def test_test_model_named_configs(name):
    out = run("scripts/test_model.py", "--config", name, timeout=1200)
    assert out.returncode == 0, out.stderr
    assert "TOTAL" in out.stdout


def test_benchmark_cli_writes_every_figure(tmp_path, tiny_qwen3):
    out = run("scripts/benchmark.py", "--config", str(tiny_yaml(tmp_path, tiny_qwen3)), "--batch_size", "2",
              "--steps", "1", "--warmup", "1", "--matmul_size", "256", "--json", str(tmp_path / "b.json"))
    assert out.returncode == 0, out.stderr
    assert "MFU" in out.stdout and "predict_action_chunk" in out.stdout
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["train"]["language_model_forwards_after_warmup"] == 0 and result["train"]["mfu"] > 0


def test_benchmark_of_the_demo_config_says_it_times_the_live_loader(demo_dataset):
    """configs/train_demo.yaml trains on live scenes (data.live): --dataset times those, and says so."""
    fast = ["--batch_size", "2", "--steps", "1", "--warmup", "0", "--inference_repeats", "1", "--matmul_size", "64"]
    out = run("scripts/benchmark.py", "--config", "demo", "--dataset", demo_dataset, *fast)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"data {demo_dataset}: live scenes of the demo env (data.live)" in out.stdout
    out = run("scripts/benchmark.py", "--config", "demo", *fast)  # synthetic: the first line says what is left out
    assert out.returncode == 0 and "synthetic (training loads live scenes of the demo env" in out.stdout


def test_benchmark_cli_rejects_a_config_typo(tmp_path, tiny_qwen3):
    out = run("scripts/benchmark.py", "--config", str(tiny_yaml(tmp_path, tiny_qwen3)), "--set", "train.bach_size=2")
    assert out.returncode == 2 and "did you mean 'batch_size'" in out.stderr


@pytest.mark.parametrize("target, extra", [("keypoint", []),
                                           ("action", ["--objects", "3", "--set", "model.goal_from=keypoint"])])
def test_shape_binding_probe_trains_and_scores_on_fresh_scenes(target, extra):
    out = run("scripts/shape_binding_probe.py", "--target", target, "--steps", "2",
              "--set", "model.vision.patch_stem=linear_pool", "--set", "model.goal_loss_weight=1", *extra)
    assert out.returncode == 0, out.stderr
    assert "step     2" in out.stdout and "towards the named object" in out.stdout


def test_shape_binding_probe_rejects_bad_input_with_exit_code_2():
    out = run("scripts/shape_binding_probe.py", "--target", "keypoint", "--set", "model.spatial_keypoints=0")
    assert out.returncode == 2 and "model.spatial_keypoints > 0" in out.stderr
    out = run("scripts/shape_binding_probe.py", "--target", "action", "--set", "model.goal_los_weight=1")
    assert out.returncode == 2 and "goal_loss_weight" in out.stderr
