"""The training loop: data -> VLAModel -> AdamW, with validation, logging and exact resume.

    from vggt_vla.config import load_config
    from vggt_vla.training.trainer import Trainer
    Trainer(load_config("simple")).fit()

Multi-GPU / multi-node: `accelerate launch scripts/train_vla.py ...`. Each process reads its own
shard of every epoch's permutation (EpochSampler), Accelerate wraps the model in DDP.

Exact resume: a checkpoint stores the optimizer step, the epoch and how many batches of it were
consumed, and the RNG states. The data order depends only on (seed, epoch), drawn from a private
generator, so the global RNG stream (dropout, flow-matching noise) is the same whether a run was
interrupted or not. SIGINT (Ctrl-C) and SIGTERM (what cluster schedulers send before a kill) let
the current optimizer step finish, then save and leave, so a checkpoint always sits on a step
boundary; after a SIGKILL, --resume starts from the last periodic save and drops the metrics
logged after it. The run directory rules (never clobbered, one writer) are in run_dir.py.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, Sampler

from vggt_vla.config import Config
from vggt_vla.data.batch import to_device
from vggt_vla.models.vla_model import VLAModel
from vggt_vla.checkpoint import (atomic_torch_save, atomic_write_text, checkpoint_config,
                                 checkpoint_normalizer, load_checkpoint, load_model_state, model_state,
                                 rng_state, set_rng_state)
from vggt_vla.output_paths import check_output_dir
from vggt_vla.training.run_logger import RunLogger, action_panel
from vggt_vla.training.resume import check_resume_config, record_resume
from vggt_vla.training.run_dir import check_new_run, claim, discard_unstarted, resumed_run_dir
from vggt_vla.training.training_data import build_training_data, describe_training_set
from vggt_vla.training.metrics import ChunkErrors
from vggt_vla.training.optim import build_optimizer, warmup_cosine

log = logging.getLogger(__name__)

# The parts of the loss that model.goal_loss_weight, geometry_alignment and geometry_target add to its
# metrics, logged on their own.
LOSS_PARTS = ("action_loss", "goal_loss", "align_loss", "geometry_loss")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf."""


class EpochSampler(Sampler):
    """A permutation per (seed, epoch), sharded over processes, optionally skipping the first
    `skip` indices (to resume mid-epoch). Uses its own generator: the global RNG is untouched."""

    def __init__(self, size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                 skip: int = 0, shuffle: bool = True):
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(size, generator=g) if shuffle else torch.arange(size)
        per_rank = math.ceil(size / world)
        padded = torch.cat([order, order[: per_rank * world - size]])  # equal shards (DDP needs it)
        self.indices = padded[rank::world][skip:].tolist()

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name!r} but CUDA is not available; use --device cpu or auto")
    return device


class Trainer:
    """Construction checks everything (config, checkpoint, data, model) and writes nothing; fit()
    claims the run directory (lock, config.yaml, logs) and trains.

    resume: a run directory or checkpoint to continue; the run continues in its own directory.
    overwrite: a new run may replace the run already in <log_dir>/<exp_name> (else it refuses)."""

    def __init__(self, cfg: Config, resume: Optional[str] = None, progress: bool = True, overwrite: bool = False):
        from accelerate import Accelerator, DistributedDataParallelKwargs

        self.resume_ckpt = load_checkpoint(resume) if resume else None
        self.resume_changes: dict = {}
        if self.resume_ckpt is not None:  # what changed is refused, or recorded when claiming
            self.resume_changes = check_resume_config(checkpoint_config(self.resume_ckpt), cfg,
                                                      self.resume_ckpt["path"], resume)
        self.cfg = cfg
        t = cfg.train
        device = resolve_device(t.device)
        # Some parameters may get no gradient in a step (layers after the last tapped VGGT layer of
        # an unfrozen aggregator, a head's unused branch): DDP must look for them instead of
        # waiting for their all-reduce forever. The search costs one graph walk per step.
        ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
        self.accelerator = Accelerator(cpu=device.type == "cpu", mixed_precision=t.mixed_precision,
                                       kwargs_handlers=[ddp])
        self.device = self.accelerator.device
        self.is_main = self.accelerator.is_main_process
        self.progress = progress and self.is_main
        own_dir = resumed_run_dir(self.resume_ckpt["path"]) if self.resume_ckpt is not None else None
        self.run_dir = own_dir or Path(t.log_dir) / t.exp_name  # a resumed run stays where it is
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.new_run, self.overwrite = own_dir is None, overwrite
        if self.is_main:  # every path the run writes, before the slow checks
            check_output_dir(self.run_dir, "--log_dir" if self.new_run else "--resume")
            if t.cache_features:
                check_output_dir(t.feature_cache_dir or Path(t.log_dir) / "feature_cache", "train.feature_cache_dir")
        if self.new_run and self.is_main:
            check_new_run(self.run_dir, overwrite)  # fail before the slow checks; again under the lock

        torch.manual_seed(t.seed)
        np.random.seed(t.seed)
        normalizer = None
        if self.resume_ckpt is not None:
            normalizer = checkpoint_normalizer(self.resume_ckpt, cfg)
        self.train_set, self.val_set, self.normalizer = build_training_data(
            cfg, normalizer, progress=self.progress, processes=self.accelerator.num_processes)

        model = VLAModel(cfg.model, geometry_teacher=cfg.model.geometry_alignment.enabled)
        if t.gradient_checkpointing:
            model.backbone.gradient_checkpointing = True
        self.pretrained_parts = model.pretrained_parts()
        optimizer = build_optimizer(model, t.lr, t.weight_decay)
        steps_per_epoch = math.ceil(len(self.train_set) / self.accelerator.num_processes
                                    / t.batch_size / t.accumulation_steps)
        self.total_steps = t.max_steps or steps_per_epoch * t.num_epochs
        scheduler = warmup_cosine(optimizer, min(t.warmup_steps, self.total_steps // 2), self.total_steps,
                                  t.min_lr_ratio)
        self.step, self.epoch, self.batch_in_epoch, self.best_l1 = 0, 0, 0, math.inf
        if self.resume_ckpt is not None:
            ck = self.resume_ckpt
            load_model_state(model, ck["model"], ck["pretrained_parts"], source=ck["path"])
            optimizer.load_state_dict(ck["optimizer"])
            scheduler.load_state_dict(ck["scheduler"])
            self.step, self.epoch, self.batch_in_epoch = ck["step"], ck["epoch"], ck["batch_in_epoch"]
            self.best_l1 = ck.get("best_l1", math.inf)
        if t.cache_features:
            self._attach_feature_cache(model)
        if t.compile:
            model.compile_blocks()
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        if self.resume_ckpt is not None:
            if self.resume_ckpt.get("scaler") and self.accelerator.scaler is not None:
                self.accelerator.scaler.load_state_dict(self.resume_ckpt["scaler"])
            # Last: building the model consumed random numbers the interrupted run did not.
            set_rng_state(self.resume_ckpt["rng"])
        self.logger: Optional[RunLogger] = None
        self._lock = None
        self._signals = _StopSignals()

    def _claim_run_dir(self) -> None:
        """Every check passed: lock the run directory, then write the config and open the logs."""
        if self.is_main:
            self._lock = claim(self.run_dir, self.new_run, self.overwrite)
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
            log.info("training data: %s", describe_training_set(self.train_set))
            if self.resume_ckpt is not None:
                log.info("resumed from %s at step %d (epoch %d, batch %d of it)", self.resume_ckpt["path"],
                         self.step, self.epoch, self.batch_in_epoch)
                record_resume(self.run_dir, self.step, self.resume_ckpt["path"], self.resume_changes)
                if self.resume_changes:
                    log.info("changed on resume (recorded in %s): %s", self.run_dir / "resumes.jsonl",
                             "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in self.resume_changes.items()))
        resumed_at = self.step if self.resume_ckpt is not None else None
        self.logger = RunLogger(self.run_dir, enabled=self.is_main, resume_step=resumed_at)

    def _attach_feature_cache(self, model: VLAModel) -> None:
        """Frozen features by dataset frame: the frozen vision tower's and the geometry teacher's."""
        from vggt_vla.training.feature_cache import FeatureCache, tower_fingerprint

        if self.accelerator.num_processes > 1:
            raise ValueError("train.cache_features supports one process only; run without it under "
                             "accelerate launch")
        cfg, source = self.cfg, self.train_set.source
        identity = source.identity()  # dataset, total_frames, codebase_version
        frames = {**identity, "cameras": list(cfg.data.camera_keys), "rename_map": cfg.data.rename_map,
                  "flip": cfg.data.flip_images}
        root = cfg.train.feature_cache_dir or str(Path(cfg.train.log_dir) / "feature_cache")
        caches = []
        if model.vision is not None and model.vision.frozen:
            key = {**frames, "tower": cfg.model.vision.vision_tower_name,
                   "tower_weights": tower_fingerprint(model.vision.backbone),
                   "image_size": cfg.model.vision.image_size, "format": 1}
            model.vision.feature_cache = FeatureCache(root, key, int(identity["total_frames"]))
            caches.append(("frozen vision features", model.vision.feature_cache))
        teacher = model.geometry_teacher
        if teacher is not None:
            a = cfg.model.geometry_alignment
            key = {**frames, "teacher": a.checkpoint, "teacher_weights": tower_fingerprint(teacher.aggregator),
                   "teacher_kwargs": a.aggregator_kwargs, "teacher_layers": teacher.layers,
                   "teacher_image_size": a.image_size,
                   "image_size": cfg.model.vision.image_size, "format": 1}
            teacher.feature_cache = FeatureCache(root, key, int(identity["total_frames"]))
            caches.append(("geometry-teacher features", teacher.feature_cache))
        if self.is_main:
            for what, cache in caches:
                log.info("%s cached in %s", what, cache.dir)

    # ------------------------------------------------------------------ data
    def _loader(self, dataset, epoch: int, skip_batches: int = 0, shuffle: bool = True) -> DataLoader:
        from vggt_vla.data.loader import loader_settings, make_loader

        t = self.cfg.train
        sampler = EpochSampler(len(dataset), t.seed, epoch, self.accelerator.process_index,
                               self.accelerator.num_processes, skip_batches * t.batch_size, shuffle)
        # One loader per epoch, its workers seeded from (seed, epoch): a resumed run's workers then
        # start exactly as the uninterrupted run's did, which persistent workers would not allow.
        settings = {**loader_settings(self.cfg), "persistent_workers": False}
        return make_loader(dataset, batch_size=t.batch_size, sampler=sampler, seed=t.seed * 7919 + epoch,
                           worker_init_fn=_ignore_stop_signals if settings["num_workers"] else None, **settings)

    # ------------------------------------------------------------------ checkpoints
    def save(self, name: str, metrics: Optional[dict] = None) -> Optional[Path]:
        self.accelerator.wait_for_everyone()
        if not self.is_main:
            return None
        scaler = self.accelerator.scaler
        ckpt = {
            "model": model_state(self.accelerator.unwrap_model(self.model), self.pretrained_parts),
            "pretrained_parts": self.pretrained_parts,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best_l1": self.best_l1,
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "normalization": self.normalizer.to_dict(),
            "metrics": metrics or {},
        }
        path = self.ckpt_dir / f"{name}.pt"
        atomic_torch_save(ckpt, path)
        return path

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> Optional[dict]:
        if self.val_set is None:
            return None
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        errors, losses, parts = ChunkErrors(), [], {name: [] for name in LOSS_PARTS}
        loader = self._loader(self.val_set, epoch=0, shuffle=False)
        generator = torch.Generator(device=self.device).manual_seed(0)  # flow-matching noise
        rng = rng_state()  # validation must not shift the training RNG streams
        for i, batch in enumerate(loader):
            if self.cfg.train.val_batches is not None and i >= self.cfg.train.val_batches:
                break
            batch = to_device(batch, self.device)
            with self.accelerator.autocast():
                loss, metrics = model(batch)
                pred = model.predict_action_chunk(batch, generator=generator)
            losses.append(loss.float())
            for name, values in parts.items():
                if name in metrics:
                    values.append(metrics[name].float())
            errors.update(pred.float(), batch["actions"], batch["action_pad_mask"].bool())
        set_rng_state(rng)
        model.train(was_training)
        summary = errors.summary()
        summary["loss"] = torch.stack(losses).mean().item()
        summary.update({name: torch.stack(v).mean().item() for name, v in parts.items() if v})
        return summary

    # ------------------------------------------------------------------ the loop
    def fit(self, stop_after: Optional[int] = None) -> dict:
        """Train to max_steps / num_epochs. stop_after: leave (saving `last`) after this many
        optimizer steps in this call, as an interruption would.

        Returns {"step", "val", "best_l1", "run_dir", "stopped_by"}; stopped_by names the signal
        (SIGINT / SIGTERM) that ended the run early, after saving, or is None (also when the signal
        came after the last step: the run is complete). A new run that ends before its first step,
        however it ends, leaves the directory as it found it; a resumed run that takes no step
        (stopped at once, or already at its last step) leaves its checkpoints and logs untouched."""
        start_step, path, last_val, interrupted = self.step, None, None, False
        stop_at = self.total_steps if stop_after is None else min(self.total_steps, self.step + stop_after)
        self._bar = None
        try:
            # Caught from before the run directory exists: a stop while it is set up (TensorBoard's
            # import alone takes seconds) ends the start like a stop anywhere else.
            with self._signals:
                self._claim_run_dir()
                self.model.train()
                if self.progress:
                    from tqdm import tqdm

                    self._bar = tqdm(total=self.total_steps, initial=self.step, desc="train", dynamic_ncols=True)
                self._nonfinite = torch.zeros((), dtype=torch.bool, device=self.device)
                self._window = _Window()
                if self.step >= self.total_steps and self.is_main:
                    log.info("nothing to train: the run ended at step %d (train.max_steps / num_epochs); "
                             "raise --max_steps to train on", self.step)
                while self.step < stop_at and not self._stop_requested():
                    last_val = self._run_epoch(stop_at) or last_val
                self._check_finite()
                if self.step > start_step and self.step >= self.total_steps:
                    last_val = self._validate_and_keep_best()  # once: a resumed finished run skips it
                if self.step > start_step or (self.new_run and self.step > 0):  # (a new run from a .pt)
                    path = self.save("last", last_val)
                elif self.resume_ckpt is not None:  # this checkpoint stands as it is
                    last_val = self.resume_ckpt.get("metrics") or None
        except KeyboardInterrupt:  # a second Ctrl-C: mid-step, so nothing is saved
            interrupted = True
            raise
        finally:
            if self._bar is not None:
                self._bar.close()
            if self.logger is not None:
                self.logger.close()
            discarded = self._release_run_dir()
            if self.is_main:
                self._report_stop(interrupted, discarded, path)
        finished = self.step >= self.total_steps
        return {"step": self.step, "val": last_val, "best_l1": self.best_l1, "run_dir": str(self.run_dir),
                "stopped_by": None if finished else self._signals.received}

    def _release_run_dir(self) -> Optional[str]:
        """Unlock the run directory. A new run that took no step is undone: -> "removed" (the
        directory is gone) or "cleared" (it existed before; only the run's files went), else None."""
        lock, self._lock = self._lock, None
        if lock is None:
            return None
        if self.new_run and self.step == 0:
            return discard_unstarted(self.run_dir, lock)
        lock.release()
        return None

    def _report_stop(self, interrupted: bool, discarded: Optional[str], path: Optional[Path]) -> None:
        """One line on stderr after a stop: what was kept, and how to go on."""
        received = self._signals.received
        if not (received or interrupted):
            return
        resume = f"continue with --resume {self.run_dir}"
        if discarded:
            how = "removed" if discarded == "removed" else "cleared of what it wrote"
            what = f"stopped before the first step, so nothing was saved and {self.run_dir} was {how}; " \
                   f"the same command starts the run again"
        elif interrupted:
            what = (f"stopped at once, not saved; the last checkpoint is {self.ckpt_dir / 'last.pt'} (if one "
                    f"was written); {resume}")
        elif self.step >= self.total_steps:
            what = f"came after the last step; the run is complete at step {self.step}"
        elif path is None:
            kept = self.resume_ckpt["path"] if self.resume_ckpt is not None else self.ckpt_dir / "last.pt"
            what = f"stopped before a step was taken; {kept} (step {self.step}) stands; {resume}"
        else:
            what = f"saved {path} at step {self.step}; {resume}"
        print(f"\n{received or 'SIGINT'}: {what}", file=sys.stderr)

    def _stop_requested(self) -> bool:
        """A stop signal arrived (on any process: all ranks must stop at the same step)."""
        stop = self._signals.received is not None
        if self.accelerator.num_processes > 1:
            flag = torch.tensor([float(stop)], device=self.device)
            stop = bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)
        return stop

    def _run_epoch(self, stop_at: int) -> Optional[dict]:
        """Optimizer steps over the rest of the current epoch, until stop_at or a stop signal;
        moves to the next epoch when this one runs out of data. -> last validation."""
        t, accel, model = self.cfg.train, self.accelerator, self.model
        last_val = None
        micro = 0
        tick = time.perf_counter()
        for batch in self._loader(self.train_set, self.epoch, skip_batches=self.batch_in_epoch):
            data_time = time.perf_counter() - tick
            batch = to_device(batch, self.device)
            micro += 1
            self.batch_in_epoch += 1
            boundary = micro % t.accumulation_steps == 0
            # Between optimizer steps DDP need not all-reduce the gradients.
            sync = contextlib.nullcontext() if boundary or accel.num_processes == 1 else accel.no_sync(model)
            with sync, accel.autocast():
                loss, metrics = model(batch)
                accel.backward(loss / t.accumulation_steps)
            self._nonfinite |= ~torch.isfinite(loss.detach())  # checked when logging: no sync here
            self._window.add(metrics, batch["images"].shape[0] * accel.num_processes)
            if boundary:
                grad_norm = accel.clip_grad_norm_(model.parameters(), t.grad_clip) if t.grad_clip else None
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
            self._window.time(data_time, time.perf_counter() - tick - data_time)
            if boundary:
                last_val = self._after_step(batch, grad_norm) or last_val
                if self.step >= stop_at or self._stop_requested():
                    break
            tick = time.perf_counter()
        else:  # the epoch ran out of data
            self.epoch += 1
            self.batch_in_epoch = 0
        return last_val

    def _after_step(self, batch: dict, grad_norm) -> Optional[dict]:
        t = self.cfg.train
        val = None
        if self.step % t.log_every == 0 or self.step == self.total_steps:
            self._check_finite()
            self._log_train(grad_norm)
        if t.image_every and self.step % t.image_every == 0:
            self._log_panel(batch)
        final = self.step == self.total_steps  # fit() validates and saves there, once
        if t.eval_every and self.step % t.eval_every == 0 and not final:
            self._check_finite()
            val = self._validate_and_keep_best()
        if self.step % t.save_every == 0 and not final:
            self._check_finite()
            self.save("last")
        if self._bar is not None:
            self._bar.update(1)
        return val

    def _check_finite(self) -> None:
        if bool(self._nonfinite):  # one host sync, at log/save time only
            raise TrainingDiverged(
                f"the training loss became NaN/inf before optimizer step {self.step}; stopping without "
                f"saving. The last good checkpoint is {self.ckpt_dir / 'last.pt'} (if one was written). "
                f"Check the data for NaN/inf (scripts/dataset_stats.py), lower train.lr, or use "
                f"train.grad_clip / mixed_precision: no.")

    def _log_train(self, grad_norm) -> None:
        w = self._window
        loss = torch.stack([m["loss"] for m in w.metrics]).float().mean().item()
        values = {"train/loss": loss, "train/lr": self.scheduler.get_last_lr()[0],
                  "train/samples_per_s": w.samples / max(w.step_time + w.data_time, 1e-9),
                  "time/data_s": w.data_time, "time/step_s": w.step_time, "train/epoch": self.epoch}
        if grad_norm is not None:
            values["train/grad_norm"] = float(grad_norm)
        for name in LOSS_PARTS:
            if name in w.metrics[0]:
                values[f"train/{name}"] = torch.stack([m[name] for m in w.metrics]).float().mean().item()
        if "l1_per_dim" in w.metrics[0]:
            per_dim = torch.stack([m["l1_per_dim"] for m in w.metrics]).float().mean(0)
            values.update({f"train/l1_dim{i}": v for i, v in enumerate(per_dim.tolist())})
        self.logger.scalars(self.step, values)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{values['train/lr']:.2e}")
        self._window = _Window()

    def _validate_and_keep_best(self) -> Optional[dict]:
        val = self.validate()
        if val is None:
            return None
        values = {"val/loss": val["loss"], "val/l1": val["l1"], "val/mse": val["mse"]}
        values.update({f"val/{name}": val[name] for name in LOSS_PARTS if name in val})
        values.update({f"val/l1_step{i}": v for i, v in enumerate(val["l1_per_step"])})
        values.update({f"val/l1_dim{i}": v for i, v in enumerate(val["l1_per_dim"])})
        self.logger.scalars(self.step, values)
        if val["l1"] < self.best_l1:
            self.best_l1 = val["l1"]
            self.save("best", val)
        return val

    @torch.no_grad()
    def _log_panel(self, batch: dict) -> None:
        if not self.is_main:
            return
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        rng = rng_state()
        one = {k: v[:1] for k, v in batch.items()}
        pred = model.predict_action_chunk(one, generator=torch.Generator(device=self.device).manual_seed(0))
        set_rng_state(rng)
        model.train()
        panel = action_panel(one["images"][0].float().cpu().numpy(), pred[0].float().cpu().numpy(),
                             one["actions"][0].float().cpu().numpy())
        self.logger.image(self.step, "train/cameras_and_actions", panel)


class _StopSignals:
    """While active, SIGINT and SIGTERM only record that a stop was asked for; the loop checks
    after each optimizer step, saves and leaves. A second SIGINT raises KeyboardInterrupt at once.
    Handlers can only be set from the main thread; elsewhere the defaults stay."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: Optional[str] = None
        self._previous: dict = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        print(f"\n{self.received}: finishing this step, then saving and stopping "
              f"(Ctrl-C again to stop at once, unsaved)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave stopping to the main process (which shuts them down): a Ctrl-C
    reaches the whole process group, and a worker that died of it would break the last step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class _Window:
    """What happened since the last log line."""

    def __init__(self):
        self.metrics, self.samples, self.data_time, self.step_time = [], 0, 0.0, 0.0

    def add(self, metrics: dict, samples: int) -> None:
        self.metrics.append(metrics)
        self.samples += samples

    def time(self, data_time: float, step_time: float) -> None:
        self.data_time += data_time
        self.step_time += step_time
