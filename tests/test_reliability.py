"""Nothing is lost: runs are never clobbered, resume is exact whatever stopped the run, a NaN never
becomes an action, and every checkpoint problem is one clear line (exit 2 from the CLIs)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, run_script
from test_training import train_config
from vggt_vla import checkpoint as ckpt_mod
from vggt_vla.checkpoint import CheckpointError
from vggt_vla.training.run_dir import RunDirError, RunLock, claim
from vggt_vla.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained_run(tiny_qwen3, demo_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("trained")
    Trainer(train_config(tiny_qwen3, demo_dataset, run_dir, head="l1"), progress=False).fit()
    return run_dir / "run"


def write_yaml(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return path


def metric_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def train_losses(run: Path) -> dict[int, float]:
    """{step: train loss}, asserting that no step was logged twice."""
    steps = [r["step"] for r in metric_rows(run) if "train/loss" in r]
    assert len(steps) == len(set(steps)), f"steps logged twice: {sorted(s for s in steps if steps.count(s) > 1)}"
    return {r["step"]: r["train/loss"] for r in metric_rows(run) if "train/loss" in r}


def assert_same_run(a: Path, b: Path, steps: int) -> None:
    la, lb = train_losses(a), train_losses(b)
    assert sorted(la) == sorted(lb) == list(range(1, steps + 1))
    for step in la:
        assert la[step] == pytest.approx(lb[step], abs=1e-6), f"step {step}: {la[step]} vs {lb[step]}"
    wa, wb = ckpt_mod.load_checkpoint(a)["model"], ckpt_mod.load_checkpoint(b)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def one_error_line(out) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip() and "warn" not in line.lower()]
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


# ------------------------------------------------------------------ runs are never clobbered
def test_a_new_run_refuses_an_existing_one_and_writes_nothing(tiny_qwen3, demo_dataset, tmp_path):
    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path / "logs", head="l1", max_steps=4)
    config = write_yaml(cfg, tmp_path / "tiny.yaml")
    run = tmp_path / "logs" / "run"
    out = run_script("scripts/train_vla.py", "--config", config, "--no_progress")
    assert out.returncode == 0, out.stderr
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}

    again = one_error_line(run_script("scripts/train_vla.py", "--config", config, "--no_progress"))
    for choice in ("--resume", "--exp_name", "--overwrite"):
        assert choice in again
    # A failed start (a dim the data contradicts) leaves the run exactly as it was ...
    one_error_line(run_script("scripts/train_vla.py", "--resume", run, "--set", "model.state_dim=6"))
    # ... and creates no directory for a new name.
    one_error_line(run_script("scripts/train_vla.py", "--config", config, "--exp_name", "other",
                              "--set", "model.state_dim=6"))
    assert not (tmp_path / "logs" / "other").exists()
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before

    out = run_script("scripts/train_vla.py", "--config", config, "--no_progress", "--overwrite",
                     "--set", "train.max_steps=2")
    assert out.returncode == 0, out.stderr
    assert sorted(train_losses(run)) == [1, 2]  # the old run's rows are gone, not appended to
    assert ckpt_mod.load_checkpoint(run)["step"] == 2


def test_a_second_training_into_a_locked_run_dir_refuses(tiny_qwen3, demo_dataset, tmp_path):
    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path, head="l1", max_steps=2)
    holder = subprocess.Popen(  # another process holds the run's lock
        [sys.executable, "-c", "import sys, time; from vggt_vla.training.run_dir import RunLock; "
                               "lock = RunLock(sys.argv[1]); lock.acquire(); print('locked', flush=True); time.sleep(120)",
         str(tmp_path / "run")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = one_error_line(run_script("scripts/train_vla.py", "--config", write_yaml(cfg, tmp_path / "t.yaml")))
        assert f"another training (pid {holder.pid} " in line and "another --exp_name" in line
        assert not (tmp_path / "run" / "config.yaml").exists()
    finally:
        holder.kill()  # SIGKILL: the kernel drops its lock, so no stale lock is left
        holder.wait()
    assert (tmp_path / "run" / ".lock").exists()
    Trainer(cfg, progress=False).fit()
    assert ckpt_mod.load_checkpoint(tmp_path / "run")["step"] == 2


def test_overwrite_clears_the_old_run_under_the_lock(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"old")
    (run / "eval_demo.json").write_text("{}")
    with pytest.raises(RunDirError, match="already holds a run"):
        claim(run, new_run=True, overwrite=False)
    lock = claim(run, new_run=True, overwrite=True)
    assert [p.name for p in run.iterdir()] == [".lock"]
    with pytest.raises(RunDirError, match="another training"):
        RunLock(run).acquire()
    lock.release()
    RunLock(run).acquire()


# ------------------------------------------------------------------ resume is exact whatever stopped the run
def wait_for_step(run: Path, step: int, proc, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        metrics = run / "metrics.jsonl"
        if metrics.exists():
            steps = [json.loads(line).get("step", 0) for line in metrics.read_text().splitlines() if line.endswith("}")]
            if steps and max(steps) >= step:
                return
        assert proc.poll() is None, f"the run ended before step {step}: {proc.communicate()}"
        time.sleep(0.02)
    raise TimeoutError(f"no step {step} within {timeout} s")


def start(*args):
    """train_vla.py in its own process group, as a shell job or a scheduler's task is."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "scripts/train_vla.py", "--no_progress", *map(str, args)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_resume_is_exact_after_sigint_sigterm_and_sigkill(tiny_qwen3, demo_dataset, tmp_path):
    steps = 60
    common = dict(head="flow_matching", max_steps=steps, save_every=5, eval_every=20, image_every=0)
    straight_cfg = train_config(tiny_qwen3, demo_dataset, tmp_path / "straight", **common)
    straight_cfg.data.num_workers = 1  # workers must survive a Ctrl-C sent to the whole group
    split_cfg = train_config(tiny_qwen3, demo_dataset, tmp_path / "split", **common)
    split_cfg.data.num_workers = 1
    out = run_script("scripts/train_vla.py", "--config", write_yaml(straight_cfg, tmp_path / "a.yaml"),
                     "--no_progress")
    assert out.returncode == 0, out.stderr
    run = tmp_path / "split" / "run"

    stops = [("--config", tmp_path / "b.yaml", signal.SIGINT, 130, 8),
             ("--resume", run, signal.SIGTERM, 143, 22),
             ("--resume", run, signal.SIGKILL, -9, 38)]
    write_yaml(split_cfg, tmp_path / "b.yaml")
    for flag, value, sig, code, at in stops:
        proc = start(flag, value)
        wait_for_step(run, at, proc)
        os.killpg(proc.pid, sig)  # lands somewhere inside a step
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code, err
        if sig != signal.SIGKILL:
            saved = ckpt_mod.load_checkpoint(run)
            assert f"{sig.name}: saved" in err and saved["step"] >= at
    out = run_script("scripts/train_vla.py", "--resume", run, "--no_progress")
    assert out.returncode == 0, out.stderr
    assert "resumed from" in out.stderr and "at step" in out.stderr
    assert_same_run(tmp_path / "straight" / "run", run, steps)


def test_resume_after_a_kill_logs_each_step_once(tiny_qwen3, demo_dataset, tmp_path):
    """Deterministic stand-in for a SIGKILL between two saves: steps 5-7 were logged after the
    last save (step 4), so the resumed run logs them again and must drop the old rows."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    Trainer(train_config(tiny_qwen3, demo_dataset, straight), progress=False).fit()
    Trainer(train_config(tiny_qwen3, demo_dataset, split), progress=False).fit(stop_after=4)
    saved = split / "run" / "checkpoints" / "last.pt"
    shutil.copy(saved, tmp_path / "step4.pt")
    Trainer(train_config(tiny_qwen3, demo_dataset, split), resume=str(split / "run"), progress=False).fit(stop_after=3)
    shutil.copy(tmp_path / "step4.pt", saved)  # the kill: the checkpoint is older than the log
    with open(split / "run" / "metrics.jsonl", "a") as f:
        f.write('{"step": 8, "train/lo')  # and the kill tore the last line
    Trainer(train_config(tiny_qwen3, demo_dataset, split), resume=str(split / "run"), progress=False).fit()
    assert_same_run(straight / "run", split / "run", 8)


# ------------------------------------------------------------------ a NaN never becomes an action
def test_policy_refuses_non_finite_observations_and_keeps_its_queue(trained_run):
    from vggt_vla.policy import NonFiniteObservation, Policy
    from vggt_vla.sim.demo_env import DemoEnv

    policy = Policy.from_pretrained(trained_run, device="cpu", n_action_steps=4)
    obs = DemoEnv(image_size=32).reset(seed=3)
    chunk = policy.predict_action_chunk(obs)
    first = policy.select_action(obs)
    bad = {**obs, "observation.state": obs["observation.state"].copy()}
    bad["observation.state"][2] = np.nan
    with pytest.raises(NonFiniteObservation, match=r"observation\['observation.state'\].*index \[2\]"):
        policy.select_action(bad)  # refused although actions are queued
    with pytest.raises(NonFiniteObservation):
        policy.predict_action_chunk({**obs, "observation.images.image": np.full((32, 32, 3), np.inf)})
    second = policy.select_action(obs)
    assert first == pytest.approx(chunk[0], abs=1e-5) and second == pytest.approx(chunk[1], abs=1e-5)
    assert np.isfinite(second).all()


def test_infer_cli_refuses_a_nan_state_and_checks_files_first(trained_run, tmp_path):
    from PIL import Image

    from vggt_vla.sim.demo_env import DemoEnv

    obs = DemoEnv(image_size=32).reset(seed=3)
    Image.fromarray(obs["observation.images.image"]).save(tmp_path / "a.png")
    Image.fromarray(obs["observation.images.wrist_image"]).save(tmp_path / "w.png")
    base = ["scripts/infer.py", "--checkpoint", trained_run, "--image", tmp_path / "a.png",
            "--wrist", tmp_path / "w.png", "--instruction", "move to the red cube", "--device", "cpu"]
    line = one_error_line(run_script(*base, "--state", "nan", "0", "0", "0", "0", "0", "0", "0"))
    assert "observation.state" in line and "NaN" in line
    (tmp_path / "t.png").write_bytes((tmp_path / "w.png").read_bytes()[:40])  # a truncated PNG
    line = one_error_line(run_script(*base[:-6], "--wrist", tmp_path / "t.png", *base[-4:]))
    assert "t.png" in line


# ------------------------------------------------------------------ checkpoint problems: one clear line
@pytest.fixture
def bad_checkpoints(trained_run, tmp_path):
    good = ckpt_mod.resolve_checkpoint(trained_run, ("best", "last"))
    raw = good.read_bytes()
    bad = {"truncated": raw[: len(raw) // 2], "random": np.random.default_rng(0).bytes(4096)}
    files = {}
    for name, data in bad.items():
        files[name] = tmp_path / f"{name}.pt"
        files[name].write_bytes(data)
    files["foreign"] = tmp_path / "foreign.pt"  # a torch file, but someone else's
    torch.save({"state_dict": {"w": torch.zeros(2)}}, files["foreign"])
    ckpt = torch.load(good, weights_only=False)
    ckpt["config"]["model"]["action_head"]["hidden_dim"] = 48  # the config no longer fits the weights
    files["mismatch"] = tmp_path / "mismatch.pt"
    torch.save(ckpt, files["mismatch"])
    ckpt = torch.load(good, weights_only=False)
    del ckpt["normalization"]["stats"]["action"]
    files["no_action_stats"] = tmp_path / "no_action_stats.pt"
    torch.save(ckpt, files["no_action_stats"])
    return files


@pytest.mark.parametrize("kind,message", [("truncated", "not a readable checkpoint"),
                                          ("random", "not a readable checkpoint"),
                                          ("foreign", "not a vggt-vla checkpoint"),
                                          ("mismatch", "differ in shape"),
                                          ("no_action_stats", "no entry for \\['action'\\]")])
def test_policy_from_pretrained_names_each_checkpoint_problem(bad_checkpoints, kind, message):
    from vggt_vla.policy import Policy

    with pytest.raises(CheckpointError, match=message) as err:
        Policy.from_pretrained(bad_checkpoints[kind], device="cpu")
    assert str(bad_checkpoints[kind]) in str(err.value) and "\n" not in str(err.value)


def test_clis_report_checkpoint_problems_in_one_line(bad_checkpoints, trained_run, tmp_path):
    line = one_error_line(run_script("scripts/eval.py", "--checkpoint", bad_checkpoints["truncated"],
                                     "--device", "cpu"))
    assert "truncated.pt" in line
    line = one_error_line(run_script("scripts/eval.py", "--checkpoint", bad_checkpoints["no_action_stats"],
                                     "--sim", "demo", "--episodes", "1", "--device", "cpu"))
    assert "no entry for ['action']" in line
    line = one_error_line(run_script("scripts/infer.py", "--checkpoint", bad_checkpoints["mismatch"],
                                     "--image", ROOT / "README.md", "--instruction", "x"))
    assert "cannot read image" in line and "README.md" in line  # checked before the model loads
    from PIL import Image

    for name in ("a.png", "w.png"):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / name)
    line = one_error_line(run_script("scripts/infer.py", "--checkpoint", bad_checkpoints["mismatch"],
                                     "--image", tmp_path / "a.png", "--wrist", tmp_path / "w.png",
                                     "--instruction", "x", "--device", "cpu"))
    assert "mismatch.pt" in line and "differ in shape" in line
    run = tmp_path / "run"  # --resume of a run whose last.pt is random bytes
    shutil.copytree(trained_run, run)
    shutil.copy(bad_checkpoints["random"], run / "checkpoints" / "last.pt")
    line = one_error_line(run_script("scripts/train_vla.py", "--resume", run))
    assert "last.pt" in line and "not a readable checkpoint" in line
