"""Late failures fail early: every CLI checks the paths it will write before it loads data or a
model (exit 2, one line naming the path and the fix), a missing dataset is one line in eval.py as
in training, and the policy takes float images as the README says."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_script
from test_reliability import one_error_line, trained_run, write_yaml  # noqa: F401 (a fixture)
from test_training import train_config
from vggt_vla.output_paths import OutputPathError, check_output_dir, check_output_file


@pytest.fixture(scope="module")
def unreadable_checkpoint(tmp_path_factory) -> Path:
    """Random bytes named like a checkpoint: loading it fails, so an error that names an output
    path proves the path was checked before the model loaded."""
    path = tmp_path_factory.mktemp("bad") / "random.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("not a directory")
    return path


# ------------------------------------------------------------------ the helper
def test_output_path_checks(tmp_path, a_file):
    assert check_output_file(tmp_path / "new" / "deeper" / "r.json", "--json") == tmp_path / "new" / "deeper" / "r.json"
    assert check_output_dir(tmp_path / "videos", "--videos") == tmp_path / "videos"
    assert check_output_file(None, "--json") is None
    assert not (tmp_path / "new").exists() and not (tmp_path / "videos").exists()  # checked, not created
    cases = [(check_output_file, tmp_path, "is a directory"),
             (check_output_dir, a_file, "is a file"),
             (check_output_file, a_file / "r.json", "is a file, so nothing can be created under it"),
             (check_output_dir, Path("/sys/vggt_vla_out"), "cannot write under /sys")]
    for check, path, problem in cases:
        with pytest.raises(OutputPathError, match=problem) as err:
            check(path, "--flag")
        assert str(err.value).startswith(f"--flag {path}: ") and "\n" not in str(err.value)


# ------------------------------------------------------------------ eval.py
def test_eval_checks_json_videos_and_plots_before_the_model_loads(unreadable_checkpoint, tmp_path, a_file):
    base = ["scripts/eval.py", "--checkpoint", unreadable_checkpoint, "--device", "cpu"]
    line = one_error_line(run_script(*base, "--json", tmp_path))  # an existing directory
    assert f"--json {tmp_path}: is a directory" in line
    line = one_error_line(run_script(*base, "--sim", "demo", "--episodes", "1", "--videos", a_file))
    assert f"--videos {a_file}: is a file" in line
    line = one_error_line(run_script(*base, "--plots", a_file / "plots"))
    assert f"--plots {a_file / 'plots'}:" in line
    assert "not a readable checkpoint" in one_error_line(run_script(*base, "--json", tmp_path / "ok.json"))


def test_eval_reports_a_damaged_dataset_in_one_line(trained_run, demo_dataset, tmp_path):  # noqa: F811
    dataset = tmp_path / "ds"
    shutil.copytree(demo_dataset, dataset)
    next(dataset.glob("data/**/*.parquet")).unlink()
    line = one_error_line(run_script("scripts/eval.py", "--checkpoint", trained_run, "--dataset", dataset,
                                     "--json", tmp_path / "r.json", "--plots", tmp_path / "plots", "--device", "cpu"))
    assert str(dataset) in line
    assert not (tmp_path / "r.json").exists()


# ------------------------------------------------------------------ train_vla.py --log_dir
@pytest.mark.parametrize("where", ["a_file", "sys"])
def test_train_checks_the_log_dir_before_the_data(tiny_qwen3, tmp_path, a_file, where):
    log_dir = a_file if where == "a_file" else Path("/sys/vggt_vla_logs")
    cfg = train_config(tiny_qwen3, str(tmp_path / "no_dataset_here"), log_dir)  # the data check would fail
    line = one_error_line(run_script("scripts/train_vla.py", "--config", write_yaml(cfg, tmp_path / "t.yaml")))
    assert f"--log_dir {log_dir / 'run'}:" in line and "no_dataset_here" not in line


# ------------------------------------------------------------------ dataset writers
def test_make_demo_dataset_checks_out_and_episodes_first(tmp_path, a_file):
    line = one_error_line(run_script("scripts/make_demo_dataset.py", "--out", a_file, "--episodes", "1"))
    assert f"--out {a_file}: is a file" in line
    for episodes in ("0", "-3"):
        line = one_error_line(run_script("scripts/make_demo_dataset.py", "--out", tmp_path / "ds", "--episodes", episodes))
        assert f"--episodes {episodes}" in line
        assert not (tmp_path / "ds").exists()  # nothing left behind
    from vggt_vla.recording.demo_dataset import make_demo_dataset

    with pytest.raises(ValueError, match="at least 1 episode"):
        make_demo_dataset(tmp_path / "api", num_episodes=0, progress=False)
    assert not (tmp_path / "api").exists()


@pytest.mark.parametrize("script, args", [
    ("scripts/generate_libero_demos.py", ["--out", "{file}"]),
    ("scripts/benchmark.py", ["--json", "{dir}"]),
    ("scripts/test_model.py", ["--json", "{file}/report.json"]),
])
def test_other_clis_check_their_outputs_first(tmp_path, a_file, script, args):
    args = [a.format(file=a_file, dir=tmp_path) for a in args]
    line = one_error_line(run_script(script, *args))
    assert f"{args[0]} {args[1]}:" in line


# ------------------------------------------------------------------ float images (README, "Use a trained policy")
def test_policy_takes_float_images_in_0_1_and_refuses_nan_ones(trained_run):  # noqa: F811
    from vggt_vla.policy import NonFiniteObservation, Policy
    from vggt_vla.sim.demo_env import DemoEnv

    policy = Policy.from_pretrained(trained_run, device="cpu")
    obs = DemoEnv(image_size=32).reset(seed=3)
    as_float = {**obs, "observation.images.image": obs["observation.images.image"].astype(np.float32) / 255}
    assert np.allclose(policy.predict_action_chunk(as_float), policy.predict_action_chunk(obs), atol=1e-5)
    nan = as_float["observation.images.image"].copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteObservation, match="observation.images.image"):
        policy.select_action({**obs, "observation.images.image": nan})
    with pytest.raises(ValueError, match=r"float images must be in \[0, 1\]"):
        policy.select_action({**obs, "observation.images.image": obs["observation.images.image"].astype(np.float32)})
