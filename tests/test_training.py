"""Training, checkpoints, resume, evaluation and the policy, on tiny configs and a tiny demo dataset."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import assert_two_process_step_in_sync, run_script, saved_before_the_live_section, tiny_config
from vggt_vla.config import config_from_dict
from vggt_vla import checkpoint as ckpt_mod
from vggt_vla.training.trainer import Trainer, TrainingDiverged



def train_config(language_model, dataset, run_dir, head="flow_matching", vision=None, data=None, sim=None,
                 **train):
    """Tiny model (dropout on, flow-matching noise: both draw from the RNG) on the tiny demo set."""
    model = tiny_config(language_model, action_head={"type": head, "chunk_size": 10},
                        simple_backbone={"dropout": 0.1}, vision=vision or {})
    tree = {
        "model": model.to_dict()["model"],
        "data": {"dataset_repo": "", "dataset_root": dataset, "num_workers": 0, "val_fraction": 0.25, **(data or {})},
        "sim": sim or {},
        "train": {"batch_size": 4, "max_steps": 8, "lr": 1e-3, "warmup_steps": 2, "log_every": 1,
                  "eval_every": 4, "save_every": 4, "image_every": 4, "val_batches": 2,
                  "log_dir": str(run_dir), "exp_name": "run", "device": "cpu", **train},
    }
    return config_from_dict(tree)


def losses(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "run" / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


def final_weights(run_dir):
    return ckpt_mod.load_checkpoint(Path(run_dir) / "run")["model"]


def test_resume_is_exact(tiny_qwen3, demo_dataset, tmp_path):
    straight = tmp_path / "straight"
    Trainer(train_config(tiny_qwen3, demo_dataset, straight), progress=False).fit()
    split = tmp_path / "split"
    Trainer(train_config(tiny_qwen3, demo_dataset, split), progress=False).fit(stop_after=3)
    assert ckpt_mod.load_checkpoint(split / "run")["step"] == 3
    Trainer(train_config(tiny_qwen3, demo_dataset, split), resume=str(split / "run"), progress=False).fit()
    a, b = losses(straight), losses(split)
    assert sorted(a) == list(range(1, 9)) and sorted(b) == list(range(1, 9))
    for step in a:
        assert abs(a[step] - b[step]) <= 1e-6, f"step {step}: {a[step]} vs {b[step]}"
    wa, wb = final_weights(straight), final_weights(split)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


LIVE = {"data": {"live": {"enabled": True}}, "sim": {"name": "demo", "camera_size": 32}}


def test_live_scene_training_resumes_exactly(tiny_qwen3, demo_dataset, tmp_path):
    """data.live: a resumed run sees the same live frames as the uninterrupted one."""
    straight = tmp_path / "straight"
    Trainer(train_config(tiny_qwen3, demo_dataset, straight, **LIVE), progress=False).fit()
    split = tmp_path / "split"
    Trainer(train_config(tiny_qwen3, demo_dataset, split, **LIVE), progress=False).fit(stop_after=3)
    Trainer(train_config(tiny_qwen3, demo_dataset, split, **LIVE), resume=str(split / "run"), progress=False).fit()
    a, b = losses(straight), losses(split)
    assert sorted(a) == sorted(b) == list(range(1, 9))
    assert all(abs(a[step] - b[step]) <= 1e-6 for step in a), (a, b)


def test_the_trainer_trains_on_what_training_data_chooses(tiny_qwen3, demo_dataset, tmp_path):
    """The trainer's training set is build_training_data's: live scenes here, not the recorded frames."""
    from vggt_vla.recording.live_scenes import LiveSceneFrames

    trainer = Trainer(train_config(tiny_qwen3, demo_dataset, tmp_path / "live", **LIVE), progress=False)
    assert isinstance(trainer.train_set, LiveSceneFrames) and len(trainer.train_set) == 8 * 4
    live = losses_of(trainer)
    recorded = losses_of(Trainer(train_config(tiny_qwen3, demo_dataset, tmp_path / "recorded"), progress=False))
    assert recorded != live


def test_a_run_saved_with_the_flat_live_keys_resumes(tiny_qwen3, demo_dataset, tmp_path):
    """A run saved before data.live was a section holds data.live_expert etc. in its config.yaml
    and checkpoint; `train_vla.py --resume RUN` reads them into data.live and carries on."""
    import yaml

    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path, **LIVE)
    Trainer(cfg, progress=False).fit(stop_after=3)
    run = tmp_path / "run"
    flat = {"live_expert": True, "live_frame_stride": 4, "live_action_noise": 0.3, "live_noise_correlation": 0.0,
            "live_shared_colour": None}  # LIVE as the older version wrote it
    old_tree = saved_before_the_live_section(cfg, flat)
    (run / "config.yaml").write_text(yaml.safe_dump(old_tree, sort_keys=False))
    for name in ("last.pt", "best.pt"):
        path = run / "checkpoints" / name
        if path.exists():
            ckpt = torch.load(path, weights_only=False)
            ckpt["config"] = old_tree
            torch.save(ckpt, path)
    out = run_script("scripts/train_vla.py", "--resume", str(run), "--no_progress")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resumed from" in out.stderr and sorted(losses(tmp_path)) == list(range(1, 9))
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["live"]["enabled"] is True


def losses_of(trainer: Trainer) -> dict:
    trainer.fit()
    return losses(trainer.run_dir.parent)


def test_run_directory_contents(tiny_qwen3, demo_dataset, tmp_path):
    result = Trainer(train_config(tiny_qwen3, demo_dataset, tmp_path, head="l1"), progress=False).fit()
    run = tmp_path / "run"
    assert (run / "config.yaml").exists() and (run / "metrics.jsonl").exists()
    assert list(run.glob("events.out.tfevents.*"))
    ck = ckpt_mod.load_checkpoint(run, "best")
    assert ck["pretrained_parts"] == {"language.model": tiny_qwen3}
    assert not any(k.startswith("language.model.") for k in ck["model"])  # reloaded, not stored
    assert ck["normalization"]["mode"] == "mean_std"
    assert result["val"]["l1"] >= 0 and len(result["val"]["l1_per_step"]) == 10
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*rows)
    for key in ("train/loss", "train/lr", "train/grad_norm", "train/samples_per_s", "time/data_s",
                "time/step_s", "train/l1_dim0", "val/loss", "val/l1", "val/l1_step9"):
        assert key in keys, key


@pytest.mark.parametrize("crash_in", ["write", "rename"])
def test_atomic_save_survives_a_crash(tmp_path, monkeypatch, crash_in):
    """A crash while the new file is written, or between the write and the rename over the old
    one, leaves the previous checkpoint loadable and no temp file behind."""
    path = tmp_path / "last.pt"
    old = {"model": {"w": torch.ones(3)}, "config": {}, "normalization": {}}
    ckpt_mod.atomic_torch_save(old, path)

    def half_write(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk died mid-save")

    def no_rename(src, dst):
        raise OSError("killed between write and rename")

    if crash_in == "write":
        monkeypatch.setattr(ckpt_mod.torch, "save", half_write)
    else:
        monkeypatch.setattr(ckpt_mod.os, "replace", no_rename)
    with pytest.raises(OSError, match="mid-save|between write and rename"):
        ckpt_mod.atomic_torch_save({**old, "model": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(ckpt_mod.load_checkpoint(path)["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_corrupt_checkpoint_is_named(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="last.pt"):
        ckpt_mod.load_checkpoint(bad)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_qwen3, demo_dataset, tmp_path, monkeypatch):
    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path, head="l1", save_every=2, eval_every=0)
    trainer = Trainer(cfg, progress=False)
    model = trainer.accelerator.unwrap_model(trainer.model)
    original = model.forward
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        loss, metrics = original(batch)
        return (loss * float("nan") if calls["n"] > 3 else loss), metrics

    monkeypatch.setattr(model, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="NaN/inf"):
        trainer.fit()
    good = ckpt_mod.load_checkpoint(tmp_path / "run")
    assert good["step"] == 2
    assert all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())


def test_optimizer_holds_only_trainable_parameters_and_decay_groups(tiny_qwen3, demo_dataset, tmp_path):
    trainer = Trainer(train_config(tiny_qwen3, demo_dataset, tmp_path, head="l1"), progress=False)
    model = trainer.accelerator.unwrap_model(trainer.model)
    in_opt = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in model.parameters() if p.requires_grad}
    decay, no_decay = trainer.optimizer.param_groups
    assert decay["weight_decay"] > 0 and no_decay["weight_decay"] == 0
    no_decay_ids = {id(p) for p in no_decay["params"]}
    assert id(model.action_queries) in no_decay_ids and id(model.vision.camera_embed) in no_decay_ids
    assert id(model.head.mlp[0].weight) not in no_decay_ids and id(model.head.mlp[0].bias) in no_decay_ids


@pytest.fixture(scope="module")
def trained_run(tiny_qwen3, demo_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("trained")
    Trainer(train_config(tiny_qwen3, demo_dataset, run_dir, head="l1"), progress=False).fit()
    return run_dir / "run"


def test_policy_action_queue(trained_run):
    from vggt_vla.policy import Policy
    from vggt_vla.sim.demo_env import DemoEnv

    policy = Policy.from_pretrained(trained_run, device="cpu", n_action_steps=3)
    calls = []
    real = policy.model.predict_action_chunk
    policy.model.predict_action_chunk = lambda *a, **k: calls.append(1) or real(*a, **k)
    env = DemoEnv(image_size=32)
    obs = env.reset(seed=1)
    chunk = policy.predict_action_chunk(obs)
    calls.clear()
    policy.reset()
    actions = [policy.select_action(obs) for _ in range(7)]
    assert len(calls) == 3  # a new chunk every 3 actions
    assert all(a.shape == (7,) for a in actions)
    for i in range(3):
        assert actions[i] == pytest.approx(chunk[i], abs=1e-5)  # executed in order
    policy.reset()
    policy.select_action(obs)
    assert len(calls) == 4  # reset empties the queue

    ensembled = Policy.from_pretrained(trained_run, device="cpu", temporal_ensemble_coeff=0.01)
    first = ensembled.select_action(obs)
    assert first == pytest.approx(chunk[0], abs=1e-5)  # one prediction: its first action
    policy.reset()
    with pytest.raises(KeyError, match="observation.images.wrist_image"):
        policy.select_action({k: v for k, v in obs.items() if k != "observation.images.wrist_image"})


def test_eval_writes_json(trained_run, tmp_path):
    out = run_script("scripts/eval.py", "--checkpoint", str(trained_run), "--json", str(tmp_path / "o.json"),
                     "--plots", str(tmp_path / "plots"), "--device", "cpu")
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "o.json").read_text())
    for key in ("l1", "mse", "l1_per_dim", "mse_per_dim", "l1_per_step", "mse_per_step", "split", "checkpoint"):
        assert key in result, key
    assert len(result["l1_per_dim"]) == 7 and len(result["l1_per_step"]) == 10
    assert list((tmp_path / "plots").glob("*.png"))
    out = run_script("scripts/eval.py", "--checkpoint", str(trained_run), "--sim", "demo", "--episodes", "2",
                     "--json", str(tmp_path / "s.json"), "--device", "cpu")
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "s.json").read_text())
    assert result["episodes"] == 2 and 0 <= result["success_rate"] <= 1
    for category in ("instruction", "target colour"):  # every episode in one row of each category
        assert sum(row["episodes"] for row in result["breakdown"][category].values()) == 2
    low, high = result["ci95"]
    assert 0 <= low <= result["success_rate"] <= high <= 1


def test_train_script_rejects_unknown_keys(tmp_path):
    out = run_script("scripts/train_vla.py", "--config", "demo", "--set", "train.lrr=1e-3")
    assert out.returncode == 2 and "did you mean 'lr'" in out.stderr


def test_wilson_interval():
    from vggt_vla.closed_loop import wilson_interval

    low, high = wilson_interval(0, 20)
    assert low == 0 and 0.1 < high < 0.2
    low, high = wilson_interval(10, 20)
    assert low < 0.5 < high and high - low == pytest.approx(2 * (0.5 - low))



def test_success_breakdown_by_episode_category():
    from vggt_vla.closed_loop import success_breakdown

    results = [{"success": True, "tags": {"task": "reach"}}, {"success": False, "tags": {"task": "reach"}},
               {"success": True, "tags": {"task": "push"}}]
    table = success_breakdown(results)
    assert set(table) == {"task"}
    assert table["task"]["reach"]["success_rate"] == 0.5 and table["task"]["reach"]["episodes"] == 2
    assert table["task"]["push"]["successes"] == 1 and table["task"]["push"]["ci95"][1] == 1.0


def test_two_process_accelerate_step_keeps_ranks_in_sync(tiny_qwen3, demo_dataset, tmp_path):
    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path, head="l1", eval_every=0, image_every=0, max_steps=2)
    assert_two_process_step_in_sync([cfg], tmp_path)


def test_policy_batch_from_an_env_observation_equals_the_training_batch(trained_run, demo_dataset):
    """Train-time and eval-time preprocessing agree: the dataset's first frame of episode 0 and
    the policy's batch from env.reset(seed=0) (the same frame, rendered live) are identical."""
    from vggt_vla.data.batch import collate
    from vggt_vla.data.loader import build_datasets
    from vggt_vla.policy import Policy
    from vggt_vla.sim.demo_env import DemoEnv

    policy = Policy.from_pretrained(trained_run, device="cpu")
    cfg = policy.cfg
    cfg.data.val_fraction = 0.0
    train, _, _ = build_datasets(cfg, policy.normalizer, progress=False)
    row = next(i for i, r in enumerate(train.rows) if train.source.row_episode[r] == 0)
    want = collate([train[row]])
    obs = DemoEnv(image_size=32).reset(seed=0)
    got = policy.batch_from_observations([obs])
    assert torch.equal(got["images"], want["images"])
    assert torch.equal(got["state"], want["state"])
    assert got["instruction"] == want["instruction"]


def test_modality_probe_sees_only_what_the_model_reads(trained_run, monkeypatch):
    from vggt_vla.modality_probe import format_probe, probe_modalities
    from vggt_vla.policy import Policy

    policy = Policy.from_pretrained(trained_run, device="cpu")
    result = probe_modalities(policy, batch_size=8, batches=2)
    names = ["camera observation.images.image", "camera observation.images.wrist_image", "instruction", "state"]
    assert list(result["inputs"]) == names
    assert result["action_names"][:2] == ["dx", "dy"] and result["varying_dims"] == [0, 1]
    assert result["inputs"]["state"]["mean"] > 0
    # Blind the model to the agent view: shuffling that camera must then change nothing.
    real = policy.model.predict_action_chunk

    def blind(batch, generator=None):
        images = batch["images"].clone()
        images[:, 0] = 0.5
        return real({**batch, "images": images}, generator)

    monkeypatch.setattr(policy.model, "predict_action_chunk", blind)
    blinded = probe_modalities(policy, batch_size=8, batches=2)
    assert blinded["inputs"]["camera observation.images.image"]["mean"] == 0.0
    assert blinded["inputs"]["state"]["mean"] > 0  # the inputs it still reads still register
    assert "instruction" in format_probe(blinded)


def test_eval_cli_probe_modalities(trained_run, tmp_path):
    out = run_script("scripts/eval.py", "--checkpoint", str(trained_run), "--probe_modalities",
                     "--json", str(tmp_path / "p.json"), "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert "camera observation.images.wrist_image" in out.stdout
    result = json.loads((tmp_path / "p.json").read_text())
    assert set(result["inputs"]) >= {"instruction", "state"}


def test_ablated_inputs_hide_what_they_name(trained_run):
    from vggt_vla.closed_loop import AblatedInputs
    from vggt_vla.policy import Policy
    from vggt_vla.sim.demo_env import DemoEnv

    policy = Policy.from_pretrained(trained_run, device="cpu")
    seen = []
    policy.select_action = lambda obs: seen.append(obs) or np.zeros(7, dtype=np.float32)
    obs = DemoEnv(image_size=32).reset(seed=1)
    AblatedInputs(policy, ("images",)).select_action(obs)
    for key in policy.cfg.data.camera_keys:
        assert (seen[-1][key] == 128).all() and not (obs[key] == 128).all()
    assert seen[-1]["instruction"] == obs["instruction"]
    AblatedInputs(policy, ("instruction",)).select_action(obs)
    assert seen[-1]["instruction"] == "" and obs["instruction"] != ""
    assert np.array_equal(seen[-1]["observation.images.image"], obs["observation.images.image"])
    with pytest.raises(ValueError, match="state"):
        AblatedInputs(policy, ("state",))


def test_eval_cli_ablation_control(trained_run, tmp_path):
    out = run_script("scripts/eval.py", "--checkpoint", str(trained_run), "--sim", "demo", "--episodes", "2",
                     "--ablate", "images", "instruction", "--json", str(tmp_path / "a.json"), "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert "with images and instruction hidden" in out.stdout
    assert json.loads((tmp_path / "a.json").read_text())["settings"]["ablate"] == ["images", "instruction"]
    out = run_script("scripts/eval.py", "--checkpoint", str(trained_run), "--ablate", "images")
    assert out.returncode == 2 and "--sim demo" in out.stderr
