"""Runs and configs mean what they say: a start stopped before its first step leaves nothing that
blocks the same command, a config file with a key given twice is refused, --resume refuses changed
settings (or records the few safe ones), a finished run stays finished, and a full disk during a
save is one line that keeps the previous checkpoint."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_script
from test_reliability import metric_rows, one_error_line, start, train_losses, write_yaml
from test_training import train_config
from vggt_vla import checkpoint as ckpt_mod
from vggt_vla.config import ConfigError, load_config
from vggt_vla.training.resume import RESUME_SAFE, ResumeConfigError
from vggt_vla.training.run_dir import RunDirError, claim, run_contents
from vggt_vla.training.trainer import Trainer


@pytest.fixture(scope="module")
def finished_run(tiny_qwen3, demo_dataset, tmp_path_factory):
    """An 8-step run trained to its end (validation at 4 and 8, saves at 4 and 8)."""
    logs = tmp_path_factory.mktemp("finished")
    Trainer(train_config(tiny_qwen3, demo_dataset, logs, head="l1", image_every=0), progress=False).fit()
    return logs / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A copy of the finished run that a test may change (it resumes in its own directory)."""
    run = tmp_path / "logs" / "run"
    shutil.copytree(finished_run, run, ignore=shutil.ignore_patterns(".lock"))
    return run


def val_steps(run: Path) -> list[int]:
    return [r["step"] for r in metric_rows(run) if "val/l1" in r]


# ------------------------------------------------------------------ a start stopped before step 1
def test_sigterm_before_the_first_step_leaves_nothing_and_the_same_command_trains(tiny_qwen3, demo_dataset,
                                                                                  tmp_path):
    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path / "logs", head="l1", max_steps=4, image_every=0)
    config = write_yaml(cfg, tmp_path / "tiny.yaml")
    run = tmp_path / "logs" / "run"
    proc = start("--config", config)
    deadline = time.time() + 120
    while not (run / "config.yaml").exists():  # the run directory appears: the trainer is claiming it
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGSTOP)  # hold it there, to check that no step was taken yet
    try:
        rows = (run / "metrics.jsonl").read_text().strip() if (run / "metrics.jsonl").exists() else ""
        assert not rows and not list(run.glob("checkpoints/*.pt")), "the first step came before the signal"
        os.kill(proc.pid, signal.SIGTERM)  # delivered when it continues, as a scheduler's would be
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM: stopped before the first step" in err and "the same command starts" in err
    assert not run.exists() and not (tmp_path / "logs").exists()  # as if it had never started

    out = run_script("scripts/train_vla.py", "--config", config, "--no_progress")
    assert out.returncode == 0, out.stderr
    assert sorted(train_losses(run)) == [1, 2, 3, 4]
    assert ckpt_mod.load_checkpoint(run)["step"] == 4


def test_what_a_kill_before_the_first_step_leaves_is_taken_over(tmp_path):
    """A SIGKILL cannot be caught: its leftovers (config.yaml, an empty metrics.jsonl and event
    file, an empty checkpoints/) are not a run, so a new run takes the directory over."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("train: {}\n")
    (run / "metrics.jsonl").write_text("")
    (run / "events.out.tfevents.1.host").write_bytes(b"\x00")
    (run / "notes.txt").write_text("mine")  # not the run's: kept
    lock = claim(run, new_run=True, overwrite=False)
    lock.release()
    assert sorted(p.name for p in run.iterdir()) == [".lock", "notes.txt"]
    (run / "checkpoints").mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "train/loss": 1.0}\n')  # a step was taken: a run
    with pytest.raises(RunDirError, match="already holds a run"):
        claim(run, new_run=True, overwrite=False)
    assert run_contents(run) == ["metrics.jsonl"]


# ------------------------------------------------------------------ config files are strict
@pytest.mark.parametrize("text, key, lines", [
    ("train:\n  lr: 0.001\n  log_every: 1\nmodel:\n  dim: 32\ntrain:\n  lr: 0.01\n", "train", (1, 6)),
    ("model:\n  dim: 32\n  vision:\n    image_size: 32\n  dim: 64\n", "dim", (2, 5)),
    ("model:\n  vision:\n    image_size: 32\n    patch_size: 8\n    image_size: 64\n", "image_size", (3, 5)),
])
def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, text, key, lines):
    path = tmp_path / "config.yaml"  # a run's config.yaml is read by the same loader
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert f"key '{key}'" in message and f"lines {lines[0]} and {lines[1]}" in message and str(path) in message


def test_train_script_refuses_a_second_train_section(tiny_qwen3, demo_dataset, tmp_path):
    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path / "logs", head="l1")
    config = write_yaml(cfg, tmp_path / "dup.yaml")
    config.write_text(config.read_text() + "train:\n  max_steps: 2\n")
    out = run_script("scripts/train_vla.py", "--config", config)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "key 'train' is given twice" in lines[0], out.stderr
    assert not (tmp_path / "logs").exists()


# ------------------------------------------------------------------ --resume: refused or recorded
def test_resume_refuses_changed_settings_naming_each(run_copy):
    before = {p: p.read_bytes() for p in run_copy.rglob("*") if p.is_file()}
    line = one_error_line(run_script("scripts/train_vla.py", "--resume", run_copy, "--batch_size", "8",
                                     "--dataset_root", run_copy.parent / "other"))
    assert "train.batch_size: 4 -> 8" in line and "data.dataset_root:" in line and "other'" in line
    assert "train.max_steps" in line  # the fields that may change are named
    assert {p: p.read_bytes() for p in run_copy.rglob("*") if p.is_file()} == before  # config.yaml too


def test_resume_of_an_edited_config_yaml_names_the_field(run_copy):
    config = run_copy / "config.yaml"
    config.write_text(config.read_text().replace("  lr: 0.001\n", "  lr: 0.01\n"))
    line = one_error_line(run_script("scripts/train_vla.py", "--resume", run_copy))
    assert "train.lr: 0.001 -> 0.01" in line and "config.yaml" in line
    assert "run's own config" not in line


def test_resume_records_a_safe_change(tiny_qwen3, demo_dataset, finished_run, run_copy):
    logs = finished_run.parent  # the run's own settings; it continues in its (copied) directory
    with pytest.raises(ResumeConfigError, match="train.seed: 42 -> 7"):
        Trainer(train_config(tiny_qwen3, demo_dataset, logs, head="l1", image_every=0, seed=7), resume=str(run_copy))
    cfg = train_config(tiny_qwen3, demo_dataset, logs, head="l1", image_every=0, max_steps=10, log_every=2)
    result = Trainer(cfg, resume=str(run_copy), progress=False).fit()
    assert result["step"] == 10 and {"train.max_steps", "train.log_every"} <= RESUME_SAFE.keys()
    rows = [json.loads(line) for line in (run_copy / "resumes.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["step"] == 8 and rows[0]["checkpoint"].endswith("last.pt")
    assert rows[0]["changed"] == {"train.max_steps": {"old": 8, "new": 10}, "train.log_every": {"old": 1, "new": 2}}
    assert load_config(str(run_copy / "config.yaml")).train.max_steps == 10
    assert sorted(train_losses(run_copy)) == [1, 2, 3, 4, 5, 6, 7, 8, 10]


# ------------------------------------------------------------------ a finished run stays finished
def test_resuming_a_finished_run_logs_nothing_twice(tiny_qwen3, demo_dataset, finished_run, run_copy):
    last = run_copy / "checkpoints" / "last.pt"
    saved = last.read_bytes()
    result = Trainer(train_config(tiny_qwen3, demo_dataset, finished_run.parent, head="l1", image_every=0),
                     resume=str(run_copy), progress=False).fit()
    assert result["step"] == 8 and result["stopped_by"] is None and result["val"]["l1"] >= 0
    assert val_steps(run_copy) == [4, 8]
    assert last.read_bytes() == saved  # nothing to save: the checkpoint stands as written


def test_sigterm_after_the_last_step_reports_a_finished_run(tiny_qwen3, demo_dataset, tmp_path, monkeypatch,
                                                           capsys):
    trainer = Trainer(train_config(tiny_qwen3, demo_dataset, tmp_path, head="l1", image_every=0), progress=False)
    validate = trainer.validate

    def validate_then_signal():
        if trainer.step == trainer.total_steps:  # the final validation: the last step is done
            os.kill(os.getpid(), signal.SIGTERM)  # reaches the trainer's own handler
        return validate()

    monkeypatch.setattr(trainer, "validate", validate_then_signal)
    result = trainer.fit()
    err = capsys.readouterr().err
    assert result["stopped_by"] is None and result["step"] == 8
    assert "SIGTERM: came after the last step; the run is complete" in err and "--resume" not in err
    assert ckpt_mod.load_checkpoint(tmp_path / "run")["step"] == 8 and val_steps(tmp_path / "run") == [4, 8]


# ------------------------------------------------------------------ a full disk during a save
FULL_DISK = r"""
import errno, io, os, runpy, sys

real_fdopen = os.fdopen


class FullDisk(io.RawIOBase):
    # The file system accepts a few bytes, then reports ENOSPC, as a full disk does.
    def __init__(self, f):
        self.f, self.written = f, 0

    def writable(self):
        return True

    def write(self, data):
        self.written += len(data)
        if self.written > 4096:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(data)

    def flush(self):
        self.f.flush()

    def fileno(self):
        return self.f.fileno()

    def close(self):
        self.f.close()
        super().close()


def fdopen(fd, mode="r", *args, **kwargs):
    f = real_fdopen(fd, mode, *args, **kwargs)
    return FullDisk(f) if mode == "wb" else f


os.fdopen = fdopen
sys.argv = ["scripts/train_vla.py", *sys.argv[1:]]
runpy.run_path("scripts/train_vla.py", run_name="__main__")
"""


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_checkpoint(tiny_qwen3, demo_dataset, tmp_path):
    cfg = train_config(tiny_qwen3, demo_dataset, tmp_path, head="l1", image_every=0, eval_every=0)
    Trainer(cfg, progress=False).fit(stop_after=4)
    run = tmp_path / "run"
    out = run_script("-c", FULL_DISK, "--resume", run, "--no_progress")
    lines = [line for line in out.stderr.splitlines() if line.startswith("error")]
    assert out.returncode == 1 and len(lines) == 1, out.stderr
    assert lines[0].startswith(f"error: No space left on device: {run / 'checkpoints'}"), out.stderr
    assert "Traceback" not in out.stderr and "inline_container" not in out.stderr
    assert ckpt_mod.load_checkpoint(run)["step"] == 4  # the previous last.pt, intact
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]  # no temp file left


def test_atomic_save_names_the_cause_of_a_failed_write(tmp_path, monkeypatch):
    """The chain torch.save raises (RuntimeError 'unexpected pos' while handling the ENOSPC) -> one line."""
    import torch

    path = tmp_path / "last.pt"
    ckpt_mod.atomic_torch_save({"w": torch.ones(3)}, path)

    def failing_save(obj, f, *args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(ckpt_mod.torch, "save", failing_save)
    with pytest.raises(ckpt_mod.SaveError) as err:
        ckpt_mod.atomic_torch_save({"w": torch.zeros(3)}, path)
    assert str(err.value).startswith(f"No space left on device: {path}") and "\n" not in str(err.value)
    monkeypatch.undo()
    assert torch.equal(torch.load(path)["w"], torch.ones(3))
