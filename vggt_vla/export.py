"""ONNX export of the inference graph, with a parity check, and the ONNX Runtime model the Policy
runs it with.

    python scripts/export_onnx.py --checkpoint logs/libero_cpu --out policy.onnx
    policy = Policy.from_pretrained("logs/libero_cpu", onnx_path="policy.onnx")   # ONNX Runtime on the CPU

The graph is VLAModel.predict_from_features at batch 1, everything after the language model:

    images         [1, V, 3, S, S] float32 in [0, 1]   the cameras as the Policy transforms them
    state          [1, state_dim]  float32, normalised (absent when model.state_dim is 0)
    language       [1, L, H]       float32: the language model's last hidden states of the
                                   instruction (LanguageEncoder.features), zero-padded to
                                   L = model.language.max_length (the tokenizer truncates there)
    language_mask  [1, L]          bool, True = real token
    noise          [1, T, A]       float32, flow-matching heads only: the sampler's start (t = 0)
    -> actions     [1, T, A]       float32, NORMALISED, as VLAModel.predict_action_chunk returns

The tokenizer and the language model stay outside: they run once per instruction (the encoder's
cache), as in training. The trainable projection after them is inside. The output is normalised
because the checkpoint's statistics are applied by the Policy around either backend (state in,
actions out): one place for them. Padding the instruction to L changes nothing (attention masks
the padded keys, the chain graph gives their edges weight 0, FiLM pools the real tokens only).

The exporter is torch.onnx.export(dynamo=True) (torch.export, then onnxscript): it captures the
model as it runs eagerly (the graph convolutions are dense matmuls), so the model has one implementation.
Every export is checked before it is written: the graph and the PyTorch model predict chunks for
frames of the checkpoint's dataset, and a max |difference| above the tolerance refuses the file.
The file records a fingerprint of the weights it holds; OnnxModel refuses a graph exported from
another checkpoint. What cannot be exported: a graph whose weights pass ONNX's 2 GiB limit for one
file (export_blockers; e.g. the VGGT-1B backbone of configs/train_full.yaml).

Dependencies (requirements-deploy.txt): onnx, onnxruntime, onnxscript; imported only here, inside
the functions that need them.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from vggt_vla.config import Config
from vggt_vla.models.vla_model import VLAModel

OPSET = 18
PARITY_TOLERANCE = 1e-4  # max |ONNX - PyTorch| over the normalised chunk
PARITY_FRAMES = 8  # frames of the dataset the parity check runs on
FINGERPRINT_KEY = "vggt_vla.weights_sha1"
ONNX_FILE_LIMIT = 2 ** 31  # bytes: protobuf's limit on one message, hence on one .onnx file


class ExportError(ValueError):
    """Export cannot run or its result is wrong. One line: what, and what to do instead."""


def graph_state(model: VLAModel) -> dict[str, torch.Tensor]:
    """The weights the graph holds: every parameter and buffer except the language model's, which
    stays outside the graph (its trainable projection is inside)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("language.model.")}


def graph_weights(model: VLAModel) -> dict[str, int]:
    """Bytes of graph_state per top-level module."""
    sizes: dict[str, int] = {}
    for name, tensor in graph_state(model).items():
        top = name.split(".")[0]
        sizes[top] = sizes.get(top, 0) + tensor.numel() * tensor.element_size()
    return sizes


def export_blockers(model: VLAModel) -> list[str]:
    """What keeps this model out of an ONNX file, each with what to do instead; [] = nothing.

    The architecture is not what limits export: torch.export captures the simple backbone's graph
    convolutions, the vision encoders and both heads (tests/test_export.py). The size is:
    ONNX keeps a graph in one protobuf of at most 2 GiB, and weights beyond that would need an
    external data file, which this export does not write (VGGT-1B as a backbone: ~3.8 GiB)."""
    sizes = graph_weights(model)
    total = sum(sizes.values())
    if total < ONNX_FILE_LIMIT:
        return []
    largest = ", ".join(f"{k} {v / 2 ** 30:.2f}" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:2])
    return [f"the graph's weights are {total / 2 ** 30:.2f} GiB ({largest} GiB), over ONNX's "
            f"{ONNX_FILE_LIMIT / 2 ** 30:.0f} GiB limit for one file (export with external weights is not "
            f"implemented); run this checkpoint with the PyTorch Policy, or export a config without the "
            f"large frozen parts (model.backbone: simple)"]


def check_exportable(model: VLAModel) -> None:
    blockers = export_blockers(model)
    if blockers:
        raise ExportError("cannot export this model to ONNX: " + "; ".join(blockers))


def weights_fingerprint(model: VLAModel) -> str:
    """sha1 of graph_state: which weights an exported file holds."""
    h = hashlib.sha1()
    for name, tensor in sorted(graph_state(model).items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- the graph

def graph_input_names(model_cfg) -> list[str]:
    """The graph's inputs, in order, for this ModelConfig."""
    names = ["images"] + (["state"] if model_cfg.state_dim > 0 else []) + ["language", "language_mask"]
    return names + (["noise"] if model_cfg.action_head.type == "flow_matching" else [])


class InferenceGraph(nn.Module):
    """VLAModel.predict_from_features with positional tensor inputs named by graph_input_names."""

    def __init__(self, model: VLAModel, names: list[str]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        inputs = dict(zip(self.names, tensors))
        return self.model.predict_from_features(inputs["images"], inputs.get("state"), inputs["language"],
                                                inputs["language_mask"], inputs.get("noise"))


def padded_features(model: VLAModel, instructions: list[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The language model's features of the instructions, zero-padded to `length` tokens:
    (hidden [B, length, H] float32, mask [B, length] bool)."""
    hidden, mask = model.language.features(list(instructions))  # [B, L, H], [B, L]
    B, L, H = hidden.shape
    if L > length:
        raise ValueError(f"the instruction has {L} tokens, more than the graph's {length} "
                         f"(model.language.max_length); the tokenizer should have truncated it")
    padded = hidden.new_zeros(B, length, H)
    padded[:, :L] = hidden
    padded_mask = torch.zeros(B, length, dtype=torch.bool, device=mask.device)
    padded_mask[:, :L] = mask
    return padded, padded_mask


def graph_inputs(model: VLAModel, batch: dict, generator: Optional[torch.Generator] = None) -> dict[str, torch.Tensor]:
    """A batch (the project's format, without actions) -> the graph's inputs by name, on the CPU.
    The flow-matching noise is drawn from `generator` as VLAModel.predict_action_chunk draws it."""
    cfg = model.cfg
    images = batch["images"]
    hidden, mask = padded_features(model, batch["instruction"], cfg.language.max_length)
    inputs = {"images": images.float(), "state": batch.get("state"), "language": hidden, "language_mask": mask}
    if cfg.action_head.type == "flow_matching":
        inputs["noise"] = model.head.initial_noise(images.shape[0], generator, images.device)
    names = graph_input_names(model.cfg)
    missing = [n for n in names if inputs.get(n) is None]
    if missing:
        raise KeyError(f"the batch lacks {missing} for the ONNX graph; it has {sorted(batch)}")
    return {n: inputs[n].detach().cpu() for n in names}


def example_batch(cfg: Config) -> dict:
    """A batch of one with the config's shapes: what the exporter traces."""
    S, V = cfg.model.vision.image_size, len(cfg.data.camera_keys)
    generator = torch.Generator().manual_seed(0)
    batch = {"images": torch.rand(1, V, 3, S, S, generator=generator), "instruction": ["pick up the object"]}
    if cfg.model.state_dim > 0:
        batch["state"] = torch.randn(1, cfg.model.state_dim, generator=generator)
    return batch


def export_graph(model: VLAModel, cfg: Config, path: str | Path) -> float:
    """Write the model's inference graph to `path` (ONNX, weights inside); returns the seconds it
    took. ExportError when the model cannot be exported or the exporter fails."""
    check_exportable(model)
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ExportError(f"ONNX export needs onnx and onnxscript ({err}); "
                          f"pip install -r requirements-deploy.txt") from None
    import warnings

    model = model.cpu().eval()
    names = graph_input_names(cfg.model)
    inputs = graph_inputs(model, example_batch(cfg), torch.Generator().manual_seed(0))
    args = tuple(inputs[n] for n in names)
    # A copy (sharing the language model, which the graph does not use) with its shape caches
    # (graph_builder's grid matrices) filled by one eager call: tracing must find real tensors there,
    # and must leave none of its own behind in the model that goes on running.
    graph = InferenceGraph(copy.deepcopy(model, {id(model.language.model): model.language.model}), names)
    start = time.perf_counter()
    chatter = logging.getLogger("onnx_ir")  # "attribute type is ambiguous" for empty attributes, harmless
    level = chatter.level
    try:
        with torch.no_grad(), warnings.catch_warnings():
            graph(*args)
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracing chatter
            chatter.setLevel(logging.ERROR)
            program = torch.onnx.export(graph, args,
                                        dynamo=True, opset_version=OPSET, input_names=names,
                                        output_names=["actions"], external_data=False, verbose=False)
    except Exception as err:  # the exporter's errors are many kinds and many lines
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"torch.onnx.export failed for this config ({type(err).__name__}: {first}); run it "
                          f"with the PyTorch Policy") from None
    finally:
        chatter.setLevel(level)
    program.model.metadata_props[FINGERPRINT_KEY] = weights_fingerprint(model)
    program.model.metadata_props["vggt_vla.language_model"] = str(model.language.model_name)
    program.save(str(path), external_data=False)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- running it

class OnnxModel:
    """Stands in for VLAModel.predict_action_chunk: the language features from the model's own
    (cached) language encoder, the rest in an ONNX Runtime session on the CPU.

    model: the PyTorch model of the same checkpoint (its language encoder and, for flow matching,
    the shape of the noise are used; the graph must have been exported from its weights).
    threads: ONNX Runtime's intra-op threads (None: torch.get_num_threads(), as eager runs)."""

    def __init__(self, path: str | Path, model: VLAModel, threads: Optional[int] = None):
        try:
            import onnxruntime
        except ImportError:
            raise ExportError("running an ONNX policy needs onnxruntime; "
                              "pip install -r requirements-deploy.txt") from None
        path = Path(path)
        if not path.is_file():
            raise ExportError(f"ONNX graph {path}: no such file; export one with python scripts/export_onnx.py "
                              f"--checkpoint RUN_DIR --out {path}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ExportError(f"ONNX graph {path}: onnxruntime cannot load it ({first}); re-export it with "
                              f"python scripts/export_onnx.py") from None
        recorded = self.session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY)
        if recorded != weights_fingerprint(model):
            raise ExportError(f"ONNX graph {path} was not exported from this checkpoint's weights (fingerprint "
                              f"{recorded or 'missing'}); re-export it: python scripts/export_onnx.py "
                              f"--checkpoint RUN_DIR --out {path}")
        self.model = model.cpu().eval()
        self.path = path
        self.names = [i.name for i in self.session.get_inputs()]
        expected = graph_input_names(model.cfg)
        if self.names != expected:
            raise ExportError(f"ONNX graph {path} takes {self.names}, this checkpoint's graph takes {expected}; "
                              f"re-export it with python scripts/export_onnx.py")
        self.batch_size = self.session.get_inputs()[0].shape[0]

    def predict_action_chunk(self, batch: dict, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """batch (images [B, V, 3, S, S], state, instruction) -> normalised chunk [B, T, A] on the CPU."""
        B = batch["images"].shape[0]
        if B != self.batch_size:
            raise ValueError(f"the ONNX graph {self.path} runs batches of {self.batch_size}, got {B}")
        with torch.no_grad():
            inputs = graph_inputs(self.model, batch, generator)
        (actions,) = self.session.run(["actions"], {n: inputs[n].numpy() for n in self.names})
        return torch.from_numpy(actions)  # [B, T, A]


# ---------------------------------------------------------------------------- parity and the CLI

def parity_frames(cfg: Config, normalizer, dataset: Optional[str] = None,
                  count: int = PARITY_FRAMES) -> tuple[list[dict], str]:
    """`count` frames spread over the dataset's held-out episodes (all episodes without a split),
    each a batch of one without actions, and the dataset in words. dataset: a root or hub repo
    id with the checkpoint's features (default: the checkpoint's data.dataset_root / dataset_repo).
    Raises DatasetError / FileNotFoundError when it cannot be read."""
    from vggt_vla.data.loader import build_datasets

    cfg = copy.deepcopy(cfg)
    cfg.data.augment = False  # the frames as the Policy sees them
    if dataset is not None:
        if Path(dataset).exists():
            cfg.data.dataset_root = dataset
        else:
            cfg.data.dataset_root, cfg.data.dataset_repo = None, dataset
    train, val, _ = build_datasets(cfg, normalizer, progress=False)
    frames = val if val is not None and len(val) else train
    rows = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int))
    batches = []
    for i in rows:
        item = frames[int(i)]
        batch = {"images": item["images"][None].float(), "instruction": [item["instruction"]]}
        if cfg.model.state_dim > 0:
            batch["state"] = item["state"][None].float()
        batches.append(batch)
    where = cfg.data.dataset_root or cfg.data.dataset_repo
    return batches, f"{len(batches)} frames of {where}"


def parity(model: VLAModel, runtime: OnnxModel, batches: list[dict]) -> float:
    """max |ONNX - PyTorch| over the normalised chunks of these batches, each sampled with the same
    seed by both (flow matching)."""
    worst = 0.0
    model.eval()
    for i, batch in enumerate(batches):
        with torch.no_grad():
            eager = model.predict_action_chunk(batch, torch.Generator().manual_seed(i)).float().cpu()
        onnx = runtime.predict_action_chunk(batch, torch.Generator().manual_seed(i))
        worst = max(worst, float((eager - onnx).abs().max()))
    return worst


@dataclass
class ExportReport:
    path: Path
    export_s: float
    max_abs_diff: float
    frames: str
    size_mb: float
    tolerance: float

    def lines(self) -> str:
        return (f"exported {self.path} ({self.size_mb:.1f} MB) in {self.export_s:.1f} s\n"
                f"parity with PyTorch on {self.frames}: max |onnx - torch| = {self.max_abs_diff:.2e} "
                f"(tolerance {self.tolerance:g}, normalised actions)")


def export_checkpoint(model: VLAModel, cfg: Config, normalizer, out: str | Path, dataset: Optional[str] = None,
                      frames: int = PARITY_FRAMES, tolerance: float = PARITY_TOLERANCE) -> ExportReport:
    """Export a loaded checkpoint's graph to `out`, checked against PyTorch on `frames` frames of
    its dataset first. Nothing is written at `out` unless parity holds. Raises ExportError (one line)."""
    from vggt_vla.data.meta import DatasetError

    check_exportable(model)
    where = dataset or cfg.data.dataset_root or cfg.data.dataset_repo
    try:
        batches, described = parity_frames(cfg, normalizer, dataset, frames)
    except (DatasetError, FileNotFoundError, OSError) as err:
        raise ExportError(f"the parity check needs frames of the checkpoint's dataset, and {where} cannot be read "
                          f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); pass --dataset ROOT, "
                          f"a dataset with the same cameras and state") from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        seconds = export_graph(model, cfg, partial)
        worst = parity(model, OnnxModel(partial, model), batches)
        if not worst <= tolerance:  # NaN fails too
            raise ExportError(f"parity failed: max |onnx - torch| = {worst:.3g} > {tolerance:g} on {described}; "
                              f"{out} was not written. Report it with the config; run the PyTorch Policy meanwhile")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return ExportReport(out, seconds, worst, described, out.stat().st_size / 2 ** 20, tolerance)
