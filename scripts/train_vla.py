#!/usr/bin/env python
"""Train a VGGT-VLA policy on LeRobot data.

    python scripts/train_vla.py --config configs/train_simple.yaml --batch_size 8 --max_steps 20000
    python scripts/train_vla.py --config demo --set model.action_head.type=flow_matching
    python scripts/train_vla.py --resume logs/simple            # continue the run exactly
    accelerate launch scripts/train_vla.py --config dinov2      # several GPUs / nodes
    tensorboard --logdir logs

Everything lands in <log_dir>/<exp_name>/: config.yaml (the resolved config), TensorBoard event
files, metrics.jsonl, checkpoints/last.pt and checkpoints/best.pt. Nothing is written there until
the config, data and model checks pass, and a run is never overwritten: a directory that holds
one refuses a new run (--resume it, choose another --exp_name, or --overwrite it), and a second
training into a directory in use refuses too.

Stopping: Ctrl-C (SIGINT) or SIGTERM finishes the current step, saves checkpoints/last.pt and exits
(130 / 143); a second Ctrl-C stops at once without saving. A stop before the first step removes
what the start wrote, so the same command starts again. --resume continues step for step as if
never stopped, after a SIGKILL too (from the last periodic save); it refuses changed settings
except the few listed in vggt_vla/training/resume.py (run length, reporting, workers), which it
records in <run>/resumes.jsonl.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without installing

from vggt_vla.config import NAMED_CONFIGS, load_config_or_report  # noqa: E402

# The seed's flags and the usual training knobs, each a shortcut for one config field. The kind is
# a type, "bool" (`--flag` alone means true) or a list of choices.
FLAGS = {
    "dataset_repo": ("data.dataset_repo", str),
    "dataset_root": ("data.dataset_root", str),
    "use_vision_tower": ("model.vision.use_vision_tower", "bool"),
    "vision_tower_name": ("model.vision.vision_tower_name", str),
    "freeze_vision_tower": ("model.vision.freeze_vision_tower", "bool"),
    "language_model": ("model.language.language_model", str),
    "freeze_language": ("model.language.freeze_language", "bool"),
    "use_pretrained_vggt": ("model.vggt.use_pretrained_vggt", "bool"),
    "freeze_vggt": ("model.vggt.freeze_vggt", "bool"),
    "batch_size": ("train.batch_size", int),
    "num_epochs": ("train.num_epochs", int),
    "lr": ("train.lr", float),
    "log_dir": ("train.log_dir", str),
    "exp_name": ("train.exp_name", str),
    "max_steps": ("train.max_steps", int),
    "accumulation_steps": ("train.accumulation_steps", int),
    "grad_clip": ("train.grad_clip", float),
    "mixed_precision": ("train.mixed_precision", ["no", "bf16", "fp16"]),
    "seed": ("train.seed", int),
    "device": ("train.device", str),
    "compile": ("train.compile", "bool"),
    "gradient_checkpointing": ("train.gradient_checkpointing", "bool"),
    "cache_features": ("train.cache_features", "bool"),
}


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--config", default=None,
                        help=f"named config ({', '.join(NAMED_CONFIGS)}) or YAML path; with --resume, "
                             f"defaults to the run's config.yaml")
    for flag, (field, kind) in FLAGS.items():
        if kind == "bool":
            parser.add_argument(f"--{flag}", type=parse_bool, nargs="?", const=True, metavar="BOOL",
                                help=f"sets {field}")
        elif isinstance(kind, list):
            parser.add_argument(f"--{flag}", choices=kind, help=f"sets {field}")
        else:
            parser.add_argument(f"--{flag}", type=kind, help=f"sets {field}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config field, e.g. --set model.simple_backbone.depth=4")
    parser.add_argument("--resume", metavar="RUN_DIR_OR_CHECKPOINT",
                        help="continue a run exactly from its last checkpoint (or a given .pt)")
    parser.add_argument("--overwrite", action="store_true",
                        help="a new run replaces the run already in <log_dir>/<exp_name> (deleting it)")
    parser.add_argument("--stop_after", type=int, metavar="N",
                        help="leave after N optimizer steps of this invocation (saving last)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def overrides_from_args(args) -> list[str]:
    out = []
    for flag, (field, _) in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            out.append(f"{field}={'true' if value is True else 'false' if value is False else value}")
    return out + args.overrides


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.overwrite and args.resume:
        print("error: --overwrite starts a new run, --resume continues one; give one of them", file=sys.stderr)
        return 2
    config, saved = args.config, False
    if config is None:
        if not args.resume:
            print("error: give --config NAME_OR_YAML (or --resume RUN_DIR)", file=sys.stderr)
            return 2
        from vggt_vla.checkpoint import CheckpointError, resolve_checkpoint

        try:  # <run>/checkpoints/last.pt -> <run>/config.yaml
            config = str(resolve_checkpoint(args.resume).parent.parent / "config.yaml")
            saved = True  # written by the run, perhaps by an older version (config.LEGACY_KEYS)
        except CheckpointError as err:
            from vggt_vla.training.run_dir import unstarted

            if unstarted(Path(args.resume)) and (Path(args.resume) / "config.yaml").exists():
                err = (f"{args.resume} holds a start that never took a step (no checkpoint, no metric); "
                       f"run the command that started it again, without --resume: it takes the directory over")
            print(f"error: --resume: {err}", file=sys.stderr)
            return 2
    cfg = load_config_or_report(config, overrides_from_args(args), saved=saved)
    if cfg is None:
        return 2

    import errno
    import logging

    from vggt_vla.data.meta import DatasetError
    from vggt_vla.models.pretrained import PretrainedUnavailable
    from vggt_vla.models.vggt import CheckpointError as VGGTCheckpointError  # a VGGT weights file that does not fit
    from vggt_vla.checkpoint import CheckpointError, SaveError
    from vggt_vla.output_paths import OutputPathError
    from vggt_vla.training.run_dir import RunDirError
    from vggt_vla.training.trainer import Trainer, TrainingDiverged

    handler = logging.StreamHandler()  # the package's own messages ("resumed from ..."), not the libraries'
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger("vggt_vla").addHandler(handler)
    logging.getLogger("vggt_vla").setLevel(logging.INFO)
    try:
        trainer = Trainer(cfg, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite)
        result = trainer.fit(args.stop_after)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except (DatasetError, PretrainedUnavailable, CheckpointError, VGGTCheckpointError, RunDirError,
            OutputPathError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SaveError as err:  # a full disk: the previous checkpoint stands
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"error: {err.strerror}: {err.filename or cfg.train.log_dir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if result["stopped_by"]:
        return {"SIGINT": 130, "SIGTERM": 143}[result["stopped_by"]]
    val = result["val"]
    summary = f"step {result['step']}"
    if val:
        summary += f", validation L1 {val['l1']:.4f} (best {result['best_l1']:.4f})"
    print(f"done: {summary}. Run directory: {result['run_dir']} "
          f"(checkpoints/last.pt, checkpoints/best.pt; tensorboard --logdir {cfg.train.log_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
