"""Can the policy learn to find "the blue cube" next to a blue ball? A diagnostic on fresh scenes.

Every scene of the demo env holds two objects of one colour, a cube and a ball, and the
instruction is "move to" one of them, so only the shape word says which. With --objects 3 a third
object of another colour joins them (the full task's shared-colour scenes): the policy must then
match colour and shape at once. Each training step
draws 32 new scenes (no scene is ever repeated, so nothing can be memorised), and 200 held-out
scenes (seeds 500000..) score it. Two targets:

  --target keypoint   regress keypoint 0 of the agent camera (patch embedding -> FiLM by the
                      instruction -> soft-argmax, the recipe's pathway) onto the named object's
                      image position: can the pathway *represent* the choice at all?
                      Score: the keypoint lies closer to the named object than to the other.
  --target action     train the whole VLAModel with its action loss (plus its goal loss when
                      --set model.goal_loss_weight=W: the goal is the gripper's end position),
                      the gripper placed anywhere on the way: does the action signal teach it?
                      Score: the first predicted move points more towards the named object.

--control colour makes the two objects differ in colour instead (same shape), the easy case.
Units are the env's raw ones (table in [-1, 1]); the policy's dataset normalisation is not used.
The model is the demo config's with the linear patchify and no goal loss (BASE_MODEL, what the
recipe was when the probe was written); --set adds what a run tests.

    python scripts/shape_binding_probe.py --target keypoint --steps 600 --set model.vision.patch_stem=linear_pool
    python scripts/shape_binding_probe.py --target action --steps 1000 \\
        --set model.vision.patch_stem=linear_pool --set model.goal_loss_weight=8

Results and what they mean: docs/experiments/2026-12-01-demo-recipe.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vggt_vla.config import ConfigError, load_config  # noqa: E402
from vggt_vla.constants import CAMERA_KEYS  # noqa: E402
from vggt_vla.data.transforms import ImageTransform  # noqa: E402
from vggt_vla.models.vla_model import VLAModel  # noqa: E402
from vggt_vla.sim import demo_env  # noqa: E402

VAL_SEEDS = range(500_000, 500_200)

# The probe's model before --set: configs/train_demo.yaml's, with these three at their defaults
# (the demo config sets them), so the probe's rows in docs/experiments/2026-12-01-demo-recipe.md
# keep their meaning.
BASE_MODEL = ["model.vision.patch_stem=linear", "model.goal_loss_weight=0", "model.goal_from=head_inputs"]


class Scenes:
    """Two-object "move to" scenes of the demo env, rendered and labelled for either target."""

    def __init__(self, image_size: int, chunk_size: int, control: str, num_objects: int = 2):
        self.env = demo_env.DemoEnv(num_objects=num_objects, task_types=("reach",))
        self.transform = ImageTransform(image_size)
        self.chunk_size = chunk_size
        self.control = control

    def _scene(self, seed: int, on_the_way: bool) -> dict:
        env = self.env
        env.reset(seed=seed)
        first, second = env.objects[:2]
        if len(env.objects) > 2:  # the named object is one of the first two
            env.target = seed % 2
        for extra in env.objects[2:]:  # a third object keeps a colour of its own
            if extra.color == first.color:
                extra.color = next(c for c in demo_env.COLORS if c != first.color)
        if self.control == "shape":  # same colour, the other shape: only the shape word decides
            second.color, second.shape = first.color, ("ball" if first.shape == "cube" else "cube")
        else:  # same shape, another colour
            second.shape = first.shape
            if second.color == first.color:
                second.color = next(c for c in demo_env.COLORS if c != first.color)
        target, other = env.objects[env.target].pos.copy(), env.objects[1 - env.target].pos.copy()
        env.instruction = f"move to the {env.objects[env.target].name}"
        if on_the_way:  # anywhere between the start and the object, as in noisy demonstrations
            rng = np.random.default_rng(seed + 10_000_000)
            env.gripper = env.gripper + rng.uniform(0, 0.7) * (target - env.gripper) + rng.normal(0, 0.05, 2)
        obs = env.observation()
        to_target = target - env.gripper
        reach = demo_env.OBJECT_R + demo_env.GRIPPER_R + 0.02  # where the expert stops
        goal = obs["observation.state"].copy()
        goal[:2] = target - to_target / max(float(np.linalg.norm(to_target)), 1e-6) * reach
        return {"images": self.transform(np.stack([obs[k] for k in CAMERA_KEYS])),
                "instruction": env.instruction, "state": obs["observation.state"],
                "action": demo_env.scripted_action(env), "goal_state": goal,
                "target_px": np.array([target[0], -target[1]]), "other_px": np.array([other[0], -other[1]]),
                "to_target": to_target, "to_other": other - env.gripper}

    def batch(self, seeds, on_the_way: bool = True) -> dict:
        items = [self._scene(int(s), on_the_way) for s in seeds]
        t = {k: torch.tensor(np.stack([it[k] for it in items]), dtype=torch.float32)
             for k in ("state", "action", "goal_state", "target_px", "other_px", "to_target", "to_other")}
        B = len(items)
        return {"images": torch.stack([it["images"] for it in items]),  # [B, V, 3, S, S]
                "instruction": [it["instruction"] for it in items],
                "state": t["state"], "goal_state": t["goal_state"],
                # the expert's action at this state for every step of the chunk (straight paths)
                "actions": t["action"][:, None, :].expand(-1, self.chunk_size, -1).contiguous(),  # [B, T, A]
                "action_pad_mask": torch.zeros(B, self.chunk_size, dtype=torch.bool),
                **{k: t[k] for k in ("target_px", "other_px", "to_target", "to_other")}}


def agent_keypoint(model: VLAModel, batch: dict) -> torch.Tensor:
    """Keypoint 0 of the agent camera, through the recipe's pathway -> [B, 2] (x right, y down)."""
    language, mask = model.language(batch["instruction"])
    vision = model.vision(batch["images"])
    tokens = model.film(vision.tokens, language, mask) if model.film is not None else vision.tokens
    return model.keypoints.keypoints(tokens, vision.grid, batch["images"].shape[1])[:, 0, 0]  # [B, 2]


def score(model: VLAModel, val: dict, target: str) -> float:
    model.eval()
    with torch.no_grad():
        if target == "keypoint":
            point = agent_keypoint(model, val)  # [B, 2]
            right = (point - val["target_px"]).norm(dim=1) < (point - val["other_px"]).norm(dim=1)
        else:
            move = model.predict_action_chunk(val)[:, :3, :2].mean(1)  # [B, 2]
            along = lambda d: (move * d).sum(1) / d.norm(dim=1)  # noqa: E731
            right = along(val["to_target"]) > along(val["to_other"])
    model.train()
    return right.float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("keypoint", "action"), required=True)
    parser.add_argument("--control", choices=("shape", "colour"), default="shape",
                        help="what tells the two objects apart (default: only their shape)")
    parser.add_argument("--objects", type=int, choices=(2, 3), default=2,
                        help="3: a third object of another colour joins the two (default 2)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override the demo config (repeatable), e.g. model.vision.patch_stem=linear_pool")
    args = parser.parse_args()
    try:
        cfg = load_config("demo", overrides=[*BASE_MODEL, *args.set])
        if args.steps < 1:
            raise ConfigError(f"--steps={args.steps}: train at least 1 step")
        if args.target == "keypoint" and not cfg.model.spatial_keypoints:
            raise ConfigError("--target keypoint reads keypoint 0: set model.spatial_keypoints > 0")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    torch.manual_seed(args.seed)
    model = VLAModel(cfg.model)
    scenes = Scenes(cfg.model.vision.image_size, cfg.model.action_head.chunk_size, args.control, args.objects)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
    val = scenes.batch(VAL_SEEDS, on_the_way=False)
    start, next_seed = time.time(), 0
    for step in range(1, args.steps + 1):
        batch = scenes.batch(range(next_seed, next_seed + 32))
        next_seed += 32
        if args.target == "keypoint":
            loss = (agent_keypoint(model, batch) - batch["target_px"]).abs().sum(1).mean()
        else:
            loss, _ = model(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step:5d}  loss {loss.item():.3f}  held-out scenes: {score(model, val, args.target):.0%} "
                  f"towards the named object  [{time.time() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
