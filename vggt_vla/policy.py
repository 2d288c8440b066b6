"""Policy: a trained VLAModel plus its normalization, acting on raw observations.

    policy = Policy.from_pretrained("logs/demo")          # run dir (best.pt, else last.pt) or a .pt
    policy.reset()                                        # at the start of every episode
    action = policy.select_action(obs)                    # [A] numpy, in the dataset's action units

`obs` is a dict: one uint8 [H, W, 3] image (or float in [0, 1]) per camera key of the training
config (e.g. "observation.images.image", "observation.images.wrist_image"), the state under the
config's state key ("observation.state"), and the instruction under "instruction" (or "task").
A state or float image holding NaN/inf raises NonFiniteObservation.

Action queue: a chunk of T actions is predicted and its first `n_action_steps` are executed
before predicting again; executing a whole chunk open-loop is a known failure mode. Temporal
ensembling (ACT) instead predicts every step and averages all predictions made for the current
step, weighting the older ones by exp(-coeff * age index). Both settings come from the config's
inference: section (config.InferenceConfig, saved with the checkpoint) unless given explicitly:

    Policy.from_pretrained("logs/demo", n_action_steps=3)              # a queue of 3
    Policy.from_pretrained("logs/demo", temporal_ensemble_coeff="off")  # the queue, whatever the config says
    Policy.from_pretrained("logs/demo", onnx_path="policy.onnx")      # its exported graph in ONNX Runtime
"""

from __future__ import annotations

import math
from collections import deque
from typing import Optional

import numpy as np
import torch

from vggt_vla.config import Config, InferenceConfig
from vggt_vla.data.normalize import Normalizer
from vggt_vla.data.transforms import ImageTransform
from vggt_vla.models.vla_model import VLAModel
from vggt_vla.checkpoint import (checkpoint_config, checkpoint_normalizer, load_checkpoint,
                                          load_model_state)


class NonFiniteObservation(ValueError):
    """An observation holds NaN or inf."""


def camera_frame(key: str, value) -> np.ndarray:
    """One camera's image as the model's training frames were: uint8 [H, W, 3]. A float image
    (many simulators and camera drivers give one) must hold values in [0, 1] and is scaled to
    0..255 and rounded; a float image outside [0, 1] (0..255 as floats, say) raises ValueError
    rather than being guessed at. NaN/inf never get here (Policy.check_finite runs first)."""
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.floating) or arr.size == 0:
        return arr  # uint8 as it is; other dtypes are named by the transform
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"observation['{key}'] is a float image with values in [{lo:g}, {hi:g}]; float "
                         f"images must be in [0, 1] (divide by 255), or pass uint8 frames")
    return np.rint(arr * 255.0).astype(np.uint8)


class Policy:
    def __init__(self, model: VLAModel, cfg: Config, normalizer: Normalizer, n_action_steps: Optional[int] = None,
                 temporal_ensemble_coeff: Optional[float | str] = None, device="cpu"):
        """n_action_steps, temporal_ensemble_coeff: None takes cfg.inference's value;
        temporal_ensemble_coeff="off" (config.ENSEMBLE_OFF) runs the action queue. An invalid
        setting raises ConfigError (a ValueError) naming it."""
        # What runs: the checkpoint's inference settings with the explicit arguments in their place.
        self.inference: InferenceConfig = cfg.inference.overridden(n_action_steps, temporal_ensemble_coeff)
        self.inference.check_chunk(cfg.model.action_head.chunk_size)
        self.model = model.to(device).eval()
        self.cfg = cfg
        self.normalizer = normalizer
        self.device = torch.device(device)
        self.n_action_steps = self.inference.n_action_steps
        self.temporal_ensemble_coeff = self.inference.temporal_ensemble
        self.schedule = ActionSchedule(self.inference)
        self.transform = ImageTransform(cfg.model.vision.image_size, flip=cfg.data.flip_images)
        self.generator = torch.Generator(device=self.device).manual_seed(0)
        self.runtime = None  # an ONNX Runtime stand-in for self.model's chunk prediction (use_onnx)
        self.reset()

    @classmethod
    def from_pretrained(cls, path, device: str = "auto", n_action_steps: Optional[int] = None,
                        temporal_ensemble_coeff: Optional[float | str] = None,
                        onnx_path: Optional[str] = None) -> "Policy":
        """Raises CheckpointError (one line: file, problem, fix) when the checkpoint is missing,
        unreadable, foreign, or its weights, config and statistics disagree; ConfigError when an
        explicit inference setting does not fit it. None: the checkpoint's inference: section.
        onnx_path: this checkpoint's graph from scripts/export_onnx.py, run by use_onnx (on the CPU)."""
        ckpt = load_checkpoint(path, ("best", "last"))  # a .pt file as is
        cfg = checkpoint_config(ckpt)
        normalizer = checkpoint_normalizer(ckpt, cfg)
        parts = ckpt.get("pretrained_parts", {})
        if "language.model" in parts:  # the model actually used (after any fallback)
            cfg.model.language.language_model = parts["language.model"]
        model = VLAModel(cfg.model)
        load_model_state(model, ckpt["model"], parts, source=ckpt["path"])
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() and onnx_path is None else "cpu"
        policy = cls(model, cfg, normalizer, n_action_steps, temporal_ensemble_coeff, device)
        policy.checkpoint_path = ckpt["path"]
        return policy if onnx_path is None else policy.use_onnx(onnx_path)

    def use_onnx(self, path, threads: Optional[int] = None) -> "Policy":
        """Predict chunks with the model's graph exported by scripts/export_onnx.py, in ONNX Runtime
        on the CPU (the language model stays in PyTorch, cached per instruction; vggt_vla/export.py).
        Raises export.ExportError (one line) when the file is missing or holds other weights."""
        from vggt_vla.export import OnnxModel

        if self.device.type != "cpu":
            raise ValueError(f"the ONNX policy runs on the CPU; load it with device='cpu', not {self.device}")
        self.runtime = OnnxModel(path, self.model, threads)
        return self

    def reset(self) -> None:
        """Forget queued actions; call at the start of every episode."""
        self.schedule.reset()

    # ------------------------------------------------------------------ observations -> batch
    def check_finite(self, obs: dict) -> None:
        """Refuse an observation whose state or float images hold NaN/inf: a NaN in gives NaN
        actions out, and a NaN action must never reach a robot."""
        data = self.cfg.data
        keys = list(data.camera_keys) + ([data.state_key] if self.cfg.model.state_dim > 0 else [])
        for key in keys:
            value = obs.get(key)
            if value is None:
                continue  # batch_from_observations names missing keys
            arr = np.asarray(value)
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                bad = np.argwhere(~np.isfinite(arr.reshape(-1)))[:, 0]
                raise NonFiniteObservation(
                    f"observation['{key}'] holds NaN/inf at flat index {bad[:5].tolist()}"
                    f"{' ...' if len(bad) > 5 else ''}; the policy refuses to act on it (queued actions "
                    f"are kept). Fix the sensor reading, or hold the last safe action yourself")

    def batch_from_observations(self, observations: list[dict]) -> dict:
        """Raw observations -> the model's batch dict (normalised state)."""
        data = self.cfg.data
        images, states, texts = [], [], []
        for obs in observations:
            self.check_finite(obs)
            missing = [k for k in data.camera_keys if k not in obs]
            if missing:
                raise KeyError(f"observation lacks camera(s) {missing}; it has {sorted(obs)} "
                               f"(the policy was trained on {data.camera_keys})")
            frames = [camera_frame(k, obs[k]) for k in data.camera_keys]
            images.append(self.transform.cameras(frames))  # [V, 3, S, S]
            text = obs.get("instruction", obs.get("task"))
            if not isinstance(text, str):
                raise KeyError("observation needs the instruction string under 'instruction' (or 'task')")
            texts.append(text)
            if self.cfg.model.state_dim > 0:
                if data.state_key not in obs:
                    raise KeyError(f"observation lacks the state '{data.state_key}'; it has {sorted(obs)}")
                state = np.asarray(obs[data.state_key], dtype=np.float32).reshape(-1)
                if state.shape[0] != self.cfg.model.state_dim:
                    raise ValueError(f"state has {state.shape[0]} dims, the policy expects "
                                     f"{self.cfg.model.state_dim}")
                states.append(self.normalizer.normalize(data.state_key, state))
        batch = {"images": torch.stack(images).to(self.device), "instruction": texts}
        if states:
            batch["state"] = torch.from_numpy(np.stack(states)).to(self.device)
        return batch

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_action_chunk(self, obs: dict, generator: Optional[torch.Generator] = None) -> np.ndarray:
        """One observation -> action chunk [T, A] in the dataset's action units. generator: the
        sampler's noise stream (None: this policy's own; the server passes each connection's)."""
        model = self.model if self.runtime is None else self.runtime
        chunk = model.predict_action_chunk(self.batch_from_observations([obs]),
                                           self.generator if generator is None else generator)
        chunk = chunk[0].float().cpu().numpy()  # [T, A], normalised
        if not np.isfinite(chunk).all():
            raise FloatingPointError(f"the model predicted NaN/inf actions from a finite observation; its "
                                     f"weights are damaged ({getattr(self, 'checkpoint_path', 'in memory')})")
        return self.normalizer.unnormalize(self.cfg.data.action_key, chunk)

    def select_action(self, obs: dict) -> np.ndarray:
        """The action to execute now, [A]. A non-finite observation raises NonFiniteObservation
        even when actions are queued, and leaves the queue as it was."""
        self.check_finite(obs)
        return self.schedule.next(lambda: self.predict_action_chunk(obs))


class ActionSchedule:
    """Which action of the predicted chunks runs now: the action queue (a chunk every
    n_action_steps steps) or ACT temporal ensembling (a chunk every step, the rows predicted for
    this step averaged). One place for both, used in process (Policy) and by the websocket client
    (serving.PolicyClient), whose chunks come from a server."""

    def __init__(self, inference: InferenceConfig):
        self.n_action_steps = inference.n_action_steps
        self.coeff = inference.temporal_ensemble  # None: the queue
        self.reset()

    def reset(self) -> None:
        self._queue: deque = deque()
        self._ensemble: list[tuple[int, np.ndarray]] = []  # (step predicted at, chunk [T, A])
        self._t = 0

    def next(self, predict) -> np.ndarray:
        """The action for this step, [A]; predict() -> a chunk [T, A] is called when one is needed."""
        if self.coeff is not None:
            return self._ensembled(predict())
        if not self._queue:
            self._queue.extend(predict()[: self.n_action_steps])
        self._t += 1
        return self._queue.popleft()

    def _ensembled(self, chunk: np.ndarray) -> np.ndarray:
        self._ensemble.append((self._t, chunk))
        self._ensemble = [(s, c) for s, c in self._ensemble if self._t - s < len(c)]  # oldest first
        preds = np.stack([c[self._t - s] for s, c in self._ensemble])  # [K, A]
        weights = np.array([math.exp(-self.coeff * i) for i in range(len(preds))])
        self._t += 1
        return (weights[:, None] * preds).sum(0) / weights.sum()
