"""Measure a configuration: training throughput and its time split, inference latency, FLOPs, MFU.

    python scripts/benchmark.py --config simple --batch_size 8 --synthetic --json simple.json

Training step = data + forward + backward + optimizer, timed separately (CUDA synchronised at
each boundary, only here, for the measurement). FLOPs are counted with FlopCounterMode over one
training step (forward + backward) with a warm language cache, i.e. what a step really runs;
MFU = counted FLOPs per second / the machine's matmul peak, measured in the same run by timing a
large matmul in the training dtype.

    python scripts/benchmark.py --config libero_cpu --latency [--checkpoint RUN_DIR] [--calls 200]

The latency mode (`latency`) times one action chunk at batch 1 from a raw observation, p50 / p99,
for PyTorch eager, torch.compile, ONNX Runtime (vggt_vla/export.py) and the websocket server on
localhost (vggt_vla/serving.py), with actions per second against LIBERO's control rate.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from vggt_vla.config import Config
from vggt_vla.models.summary import build_for_inspection, dummy_batch, peak_memory_mb
from vggt_vla.training.optim import build_optimizer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_flops(device: torch.device, dtype=torch.float32, n: int = 4096, repeats: int = 10) -> float:
    """Best-of-`repeats` FLOP/s of an n x n x n matmul (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def machine_info(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(), "device": str(device),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}  # the kernel set: AVX2, AVX512, ...
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    import transformers

    info["transformers"] = transformers.__version__
    return info


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class StepTimer:
    """Accumulates per-phase wall times of training steps."""

    def __init__(self, device):
        self.device = device
        self.phases: dict[str, list[float]] = {"data": [], "forward": [], "backward": [], "optimizer": []}
        self._t = None

    def start(self):
        _sync(self.device)
        self._t = time.perf_counter()

    def lap(self, phase: str):
        _sync(self.device)
        now = time.perf_counter()
        self.phases[phase].append(now - self._t)
        self._t = now

    def median_ms(self) -> dict[str, float]:
        return {k: statistics.median(v) * 1e3 for k, v in self.phases.items() if v}


# LIBERO has ten instructions per suite; the synthetic batches and the inference call use these
# (short ones, so that the language ablation and the cached path see the same token counts).
BENCH_INSTRUCTIONS = [f"instruction {i}" for i in range(10)]


def _training_set(cfg: Config, dataset: str, items: int):
    """What training would load from the dataset at `dataset` (training/training_data.py: its
    recorded frames, or live scenes of the demo env with data.live), and that in words."""
    from vggt_vla.training.training_data import build_training_data, describe_training_set

    cfg.data.dataset_root = dataset
    train, _, _ = build_training_data(cfg, progress=False, live_items=items)
    return train, f"{dataset}: {describe_training_set(train)}"


def _batches(cfg: Config, batch_size: int, train, device, num_workers: int):
    """An endless iterator of batches on `device`: one in-memory batch (train None), or a real
    DataLoader over `train`."""
    if train is None:
        batch = dummy_batch(cfg, batch_size, device)
        batch["instruction"] = [BENCH_INSTRUCTIONS[i % len(BENCH_INSTRUCTIONS)] for i in range(batch_size)]
        while True:
            yield batch
    from vggt_vla.data.batch import to_device
    from vggt_vla.data.loader import make_loader

    loader = make_loader(train, batch_size=batch_size, shuffle=True, num_workers=num_workers, drop_last=True,
                         persistent_workers=True)
    while True:
        for batch in loader:
            yield to_device(batch, device)


def count_train_flops(model, batch: dict) -> float:
    """FLOPs of one training step (forward + backward) for this batch."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        loss, _ = model(batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def benchmark(cfg: Config, *, batch_size: int = 8, steps: int = 20, warmup: int = 3, device: str = "cpu",
              synthetic: bool = True, dataset: Optional[str] = None, num_workers: int = 0,
              random_weights: bool = False, compile: bool = False, mixed_precision: str = "no",
              ablate_language: bool = False, inference_repeats: int = 20, matmul_size: int = 4096) -> dict:
    device = torch.device(device)
    torch.manual_seed(0)
    model, used_random = build_for_inspection(cfg, random_weights)
    model.to(device)
    train, data_used = None, "synthetic"
    if cfg.data.live.enabled:  # say so: the figure leaves out the loader this config trains with
        data_used += " (training loads live scenes of the demo env, data.live; --dataset ROOT times that loader)"
    if not synthetic and dataset is not None:
        train, data_used = _training_set(cfg, dataset, (warmup + steps + 1) * batch_size)
    data = _batches(cfg, batch_size, train, device, num_workers)
    if ablate_language:
        _replace_language_with_constant(model, next(data)["instruction"])
    optimizer = build_optimizer(model, cfg.train.lr, cfg.train.weight_decay)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
    autocast = lambda: torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)  # noqa: E731
    if compile:
        model.compile_blocks()
    model.train()

    # warm-up (compilation, allocator, language cache), then timed steps
    lm_forwards = lambda: getattr(model.language, "num_lm_forwards", 0)  # noqa: E731
    instructions_seen: set[str] = set()
    teacher = model.geometry_teacher
    if teacher is not None:  # the geometry teacher: every timed step a new frame (a cold cache)
        teacher.feature_cache = _scratch_teacher_cache((warmup + steps) * batch_size)
        data = _with_rows(data, batch_size, fresh=True)
    phases, lm_forwards_timed = _timed_steps(model, optimizer, data, warmup, steps, autocast, device,
                                             instructions_seen, lm_forwards)
    warm_teacher = None
    if teacher is not None:  # the same frames again: every teacher feature read from the cache
        teacher_runs = teacher.forward_count
        warm, _ = _timed_steps(model, optimizer, _with_rows(data, batch_size, fresh=False), 1, steps, autocast,
                               device, instructions_seen, lm_forwards)
        warm_teacher = {"samples_per_s": batch_size / (sum(warm.values()) / 1e3), "step_ms": sum(warm.values()),
                        "phase_ms": warm, "teacher_forwards": teacher.forward_count - teacher_runs}
        teacher.feature_cache = None  # FLOPs below: what a step costs with the teacher running

    batch = next(data)
    instructions_seen.update(batch["instruction"])
    with autocast():
        flops_step = count_train_flops(model, batch)
    peak = matmul_peak_flops(device, amp_dtype or torch.float32, n=matmul_size)
    result = {
        "config": cfg.train.exp_name,
        "batch_size": batch_size,
        "random_weights": used_random,
        "compile": compile,
        "mixed_precision": mixed_precision,
        "data": data_used,
        "language_ablated": ablate_language,
        "train": {
            **train_figures(flops_step, batch_size, phases, peak),
            "language_model_forwards_after_warmup": lm_forwards_timed,
            # a frozen, cached language model runs once per distinct instruction, ever
            "language_model_forwards_total": getattr(model.language, "num_lm_forwards", 0),
            "distinct_instructions_seen": len(instructions_seen),
            "geometry_teacher": "cold cache (runs every step)" if warm_teacher else None,
        },
        "peak_memory_mb": peak_memory_mb(device),
    }
    if warm_teacher is not None:
        result["train_warm_teacher_cache"] = warm_teacher
    result["inference"] = _inference(model, cfg, device, inference_repeats, autocast)
    result["machine"] = machine_info(device)
    return result


def compare_steps(cfgs: dict[str, Config], *, batch_size: int = 32, steps: int = 10, rounds: int = 3,
                  warmup: int = 3, device: str = "cpu", dataset: Optional[str] = None, num_workers: int = 0,
                  random_weights: bool = False) -> dict:
    """Training step time of several configurations measured side by side in one process: after
    warm-up, `rounds` rounds in which each model runs `steps` timed steps in turn, so that a change
    in the machine's speed (another job, a clock change) hits every row alike. -> {"rows": {name:
    {"step_ms": median over rounds of each round's median step, "phase_ms", "rounds_ms",
    "flops_per_sample"}}, "machine"}. Ratios are read against the first row."""
    device = torch.device(device)
    runs = {}
    for name, cfg in cfgs.items():
        torch.manual_seed(0)
        model, _ = build_for_inspection(cfg, random_weights)
        model.to(device).train()
        train = _training_set(cfg, dataset, (warmup + rounds * steps + 1) * batch_size)[0] if dataset else None
        data = _batches(cfg, batch_size, train, device, num_workers)
        optimizer = build_optimizer(model, cfg.train.lr, cfg.train.weight_decay)
        runs[name] = (model, optimizer, data)
    autocast = lambda: torch.autocast(device.type, enabled=False)  # noqa: E731
    lm_forwards = lambda: 0  # noqa: E731
    for model, optimizer, data in runs.values():
        _timed_steps(model, optimizer, data, warmup, 1, autocast, device, set(), lm_forwards)
    per_round: dict[str, list[dict]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (model, optimizer, data) in runs.items():
            phases, _ = _timed_steps(model, optimizer, data, 0, steps, autocast, device, set(), lm_forwards)
            per_round[name].append(phases)
    rows = {}
    for name, (model, _, data) in runs.items():
        totals = [sum(p.values()) for p in per_round[name]]
        median_round = per_round[name][totals.index(sorted(totals)[(len(totals) - 1) // 2])]
        rows[name] = {"step_ms": sum(median_round.values()), "phase_ms": median_round, "rounds_ms": totals,
                      "flops_per_sample": count_train_flops(model, next(data)) / batch_size}
    return {"rows": rows, "batch_size": batch_size, "steps": steps, "rounds": rounds,
            "machine": machine_info(device)}


def format_comparison(r: dict) -> str:
    m = r["machine"]
    lines = [f"== training step, side by side | batch {r['batch_size']} | {r['rounds']} rounds x {r['steps']} "
             f"steps each | {m['device']} ({m.get('gpu') or m.get('cpu_model', '')}, {m['cpu_cores']} cores, "
             f"CPU kernels {m['cpu_capability']})"]
    first = next(iter(r["rows"].values()))["step_ms"]
    for name, row in r["rows"].items():
        phases = "  ".join(f"{k} {v:.1f}" for k, v in row["phase_ms"].items())
        rounds = ", ".join(f"{v:.0f}" for v in row["rounds_ms"])
        lines.append(f"{name}: step {row['step_ms']:.1f} ms ({phases} ms; rounds {rounds}), "
                     f"{row['flops_per_sample'] / 1e9:.2f} GFLOP/sample, {first / row['step_ms']:.2f}x as fast as "
                     f"the first row")
    return "\n".join(lines)


def train_figures(flops_per_step: float, batch_size: int, phase_ms: dict[str, float],
                  peak_flops_per_s: float) -> dict:
    """Throughput and utilisation of a training step from its median phase times (ms). Achieved
    FLOP/s and MFU count the compute phases only: the data phase runs none of the counted FLOPs."""
    step_ms = sum(phase_ms.values())
    achieved = flops_per_step / ((step_ms - phase_ms["data"]) / 1e3)
    return {"samples_per_s": batch_size / (step_ms / 1e3), "step_ms": step_ms, "phase_ms": phase_ms,
            "flops_per_step": flops_per_step, "flops_per_sample": flops_per_step / batch_size,
            "achieved_flops_per_s": achieved, "matmul_peak_flops_per_s": peak_flops_per_s,
            "mfu": achieved / peak_flops_per_s}


def _timed_steps(model, optimizer, data, warmup: int, steps: int, autocast, device, instructions_seen: set,
                 lm_forwards) -> tuple[dict, int]:
    """`warmup` untimed then `steps` timed training steps -> (median ms per phase, language-model
    forwards during the timed steps)."""
    timer = StepTimer(device)
    lm_before = lm_forwards()
    for i in range(warmup + steps):
        if i == warmup:
            timer = StepTimer(device)
            lm_before = lm_forwards()
        timer.start()
        batch = next(data)
        timer.lap("data")
        instructions_seen.update(batch["instruction"])
        with autocast():
            loss, _ = model(batch)
        timer.lap("forward")
        loss.backward()
        timer.lap("backward")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timer.lap("optimizer")
    return timer.median_ms(), lm_forwards() - lm_before


def _scratch_teacher_cache(num_frames: int):
    """A feature cache in a temporary directory, deleted at exit."""
    import atexit
    import shutil
    import tempfile

    from vggt_vla.training.feature_cache import FeatureCache

    folder = tempfile.mkdtemp(prefix="vggt_vla_teacher_cache_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return FeatureCache(folder, {"benchmark": folder}, num_frames)


def _with_rows(data, batch_size: int, fresh: bool):
    """Batches with dataset rows for the feature cache: new rows every batch (fresh), or the
    first batch's rows over and over (frames the cache already holds)."""
    step = 0
    for batch in data:
        start = step * batch_size if fresh else 0
        batch = {**batch, "row": torch.arange(start, start + batch_size)}
        step += 1
        yield batch


def _inference(model, cfg: Config, device, repeats: int, autocast) -> dict:
    """predict_action_chunk latency at batch 1, and actions/s through the Policy's action queue."""
    model.eval()
    batch = dummy_batch(cfg, 1, device)
    del batch["actions"], batch["action_pad_mask"]
    batch["instruction"] = BENCH_INSTRUCTIONS[:1]  # what the ablated language model holds, too
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            _sync(device)
            start = time.perf_counter()
            with autocast():
                model.predict_action_chunk(batch)
            _sync(device)
            if i >= 2:
                times.append((time.perf_counter() - start) * 1e3)
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter, autocast():
            model.predict_action_chunk(batch)
    median = statistics.median(times)
    # Actions executed per predicted chunk when the Policy runs this config (inference: section);
    # temporal ensembling predicts at every step.
    n_steps = cfg.inference.n_action_steps if cfg.inference.temporal_ensemble is None else 1
    return {"predict_action_chunk_ms_median": median, "predict_action_chunk_ms_p90": _percentile(times, 90),
            "actions_per_s_with_queue": n_steps / (median / 1e3), "n_action_steps": n_steps,
            "flops_per_sample": float(counter.get_total_flops()),  # batch 1, warm language cache
            "chunk_size": cfg.model.action_head.chunk_size}


class _ConstantLanguage(torch.nn.Module):
    """The 'no language model at all' baseline: fixed language-model features of the same shape.

    The trainable projection stays, so the only difference from the cached path is the
    language model (and its cache lookup): the comparison isolates what caching costs.
    """

    def __init__(self, hidden: torch.Tensor, mask: torch.Tensor, proj: torch.nn.Module):
        super().__init__()
        self.register_buffer("hidden", hidden)  # [B, L, H]
        self.register_buffer("mask", mask)  # [B, L]
        self.proj = proj
        self.frozen = True
        self.model_name = "(ablated: constant features)"
        self.num_lm_forwards = 0

    def forward(self, instructions):
        B = len(instructions)
        return self.proj(self.hidden[:B]), self.mask[:B]  # [B, L, D], [B, L]


def _replace_language_with_constant(model, instructions: list[str]) -> None:
    """Features of these instructions, frozen in: same shapes downstream, no language model."""
    with torch.no_grad():
        hidden, mask = model.language._run_model(list(instructions))  # [B, L, H], [B, L]
    model.language = _ConstantLanguage(hidden, mask, model.language.proj)


def format_result(r: dict) -> str:
    t, inf = r["train"], r["inference"]
    phases = "  ".join(f"{k} {v:.1f}" for k, v in t["phase_ms"].items())
    lines = [
        f"== benchmark: {r['config']} | batch {r['batch_size']} | {r['machine']['device']} "
        f"({r['machine'].get('gpu') or r['machine'].get('cpu_model', '')}, {r['machine']['cpu_cores']} cores, "
        f"CPU kernels {r['machine']['cpu_capability']}) "
        f"| data {r['data']}" + (" | RANDOM weights" if r["random_weights"] else "")
        + (" | compiled" if r["compile"] else "") + (f" | {r['mixed_precision']}" if r["mixed_precision"] != "no" else "")
        + (" | language ABLATED" if r["language_ablated"] else ""),
        f"train: {t['samples_per_s']:.2f} samples/s, step {t['step_ms']:.1f} ms ({phases} ms)",
        f"       language-model forwards: {t['language_model_forwards_after_warmup']} after warm-up, "
        f"{t['language_model_forwards_total']} in all for {t['distinct_instructions_seen']} distinct instructions",
        f"       {t['flops_per_sample'] / 1e9:.2f} GFLOP/sample (fwd+bwd), achieved "
        f"{t['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s, matmul peak {t['matmul_peak_flops_per_s'] / 1e9:.1f} "
        f"GFLOP/s -> MFU {t['mfu']:.1%}",
    ]
    warm = r.get("train_warm_teacher_cache")
    if warm is not None:
        lines[1] += "  [geometry teacher: cold cache, VGGT runs every step]"
        lines.append(f"       with a warm teacher cache: {warm['samples_per_s']:.2f} samples/s, step "
                     f"{warm['step_ms']:.1f} ms ({'  '.join(f'{k} {v:.1f}' for k, v in warm['phase_ms'].items())} ms), "
                     f"{warm['teacher_forwards']} teacher forwards")
    lines += [
        f"inference (batch 1): predict_action_chunk median {inf['predict_action_chunk_ms_median']:.1f} ms, "
        f"p90 {inf['predict_action_chunk_ms_p90']:.1f} ms; {inf['actions_per_s_with_queue']:.1f} actions/s "
        f"with a queue of {inf['n_action_steps']}; {inf['flops_per_sample'] / 1e9:.2f} GFLOP/sample",
        f"peak memory: {r['peak_memory_mb']:,.0f} MB",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- chunk latency

LATENCY_ROWS = ("eager", "compile", "onnx", "server")  # every row `latency` can measure
LATENCY_INSTRUCTION = "pick up the black bowl between the plate and the ramekin and place it on the plate"


def _latency_policy(cfg: Optional[Config], checkpoint: Optional[str], random_weights: bool):
    """(Policy on the CPU, weights in words): the checkpoint's, or the config's architecture with
    fresh weights and unit statistics (latency does not depend on the weights)."""
    from vggt_vla.data.normalize import Normalizer
    from vggt_vla.policy import Policy

    if checkpoint is not None:
        policy = Policy.from_pretrained(checkpoint, device="cpu")
        return policy, f"checkpoint {policy.checkpoint_path}"
    model, used_random = build_for_inspection(cfg, random_weights)
    m = cfg.model
    unit = lambda dim: {"mean": np.zeros(dim), "std": np.ones(dim)}  # noqa: E731
    stats = {cfg.data.action_key: unit(m.action_head.action_dim)}
    if m.state_dim > 0:
        stats[cfg.data.state_key] = unit(m.state_dim)
    weights = "untrained weights" + (" (pretrained parts RANDOM too)" if used_random else "")
    return Policy(model, cfg, Normalizer(stats, "mean_std"), device="cpu"), weights


def latency_observation(cfg: Config, seed: int = 0) -> dict:
    """One raw observation as the simulator gives it: uint8 frames at the rendered size (sim.camera_size,
    else the model's), the state, a LIBERO instruction."""
    rng = np.random.default_rng(seed)
    size = cfg.sim.camera_size or cfg.model.vision.image_size
    obs = {key: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for key in cfg.data.camera_keys}
    if cfg.model.state_dim > 0:
        obs[cfg.data.state_key] = rng.normal(size=cfg.model.state_dim).astype(np.float32)
    return {**obs, "instruction": LATENCY_INSTRUCTION}


def time_interleaved(fns: dict, calls: int, warmup: int) -> dict[str, dict]:
    """Time several backends call by call in turn: after each one's `warmup` untimed calls, round i
    times one call of each, starting at backend i mod n. A shared VM's speed drifts by tens of
    percent within minutes; rows timed one after another then compare the machine's moments, not
    the backends. -> {name: {p50_ms, p99_ms, mean_ms, first_ms, calls}} (first_ms: the first warm-up
    call, where compilation happens)."""
    first = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        fn()
        first[name] = (time.perf_counter() - start) * 1e3
        for _ in range(max(warmup - 1, 0)):
            fn()
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(calls):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            fns[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: {"p50_ms": _percentile(t, 50), "p99_ms": _percentile(t, 99), "mean_ms": statistics.fmean(t),
                   "first_ms": first[name], "calls": calls} for name, t in times.items()}


def latency(cfg: Optional[Config] = None, checkpoint: Optional[str] = None, calls: int = 200, warmup: int = 10,
            rows: tuple[str, ...] = LATENCY_ROWS, random_weights: bool = False) -> dict:
    """Latency of one action chunk at batch 1, from a raw observation to the chunk in action units
    (Policy.predict_action_chunk: image transform, the language cache, the model, the statistics),
    p50 / p99 over `calls` calls, per backend:

      eager    PyTorch as it is;
      onnx     the graph of vggt_vla/export.py in ONNX Runtime (export time and parity reported);
      server   the websocket server on localhost around the fastest in-process backend (onnx
               when that row runs, else eager), timed at the client (PolicyClient.infer);
      compile  model.compile_blocks() (torch.compile of the transformer blocks and the head; the
               first call's time is its compile time). Runs last: it changes the model in place.

    eager, onnx and server are timed call by call in turn (time_interleaved), so that their ratios
    hold on a machine whose speed drifts.

    The language model runs once per instruction (cached), so it is in the first call only. Actions
    per second = n_action_steps (the inference: section; 1 with temporal ensembling) / p50."""
    import tempfile

    from vggt_vla.sim.libero import CONTROL_HZ

    unknown = sorted(set(rows) - set(LATENCY_ROWS))
    if unknown:
        raise ValueError(f"unknown latency rows {unknown}; choose from {list(LATENCY_ROWS)}")
    policy, weights = _latency_policy(cfg, checkpoint, random_weights)
    cfg = policy.cfg
    obs = latency_observation(cfg)
    n_steps = cfg.inference.n_action_steps if cfg.inference.temporal_ensemble is None else 1

    def chunk(runtime=None):
        policy.runtime = runtime  # None: the PyTorch model
        return policy.predict_action_chunk(obs, torch.Generator().manual_seed(0))

    fns, extras = {}, {}
    with tempfile.TemporaryDirectory(prefix="vggt_vla_latency_") as folder, contextlib.ExitStack() as stack:
        reference = chunk()
        if "eager" in rows:
            fns["eager"] = chunk
        onnx = None
        if "onnx" in rows:
            from vggt_vla.export import export_graph

            export_s = export_graph(policy.model, cfg, Path(folder) / "policy.onnx")
            onnx = policy.use_onnx(Path(folder) / "policy.onnx").runtime
            diff = float(np.abs(chunk(onnx) - reference).max())
            fns["onnx"] = lambda: chunk(onnx)
            extras["onnx"] = {"export_s": export_s, "max_abs_diff": diff}
        if "server" in rows:
            # timed at the client: its encoding, the socket, the server's decoding and the Policy
            from vggt_vla.serving import PolicyClient, PolicyServer

            server = PolicyServer(policy)
            port = server.start("127.0.0.1", 0)
            stack.callback(server.stop)
            client = stack.enter_context(PolicyClient(f"ws://127.0.0.1:{port}"))

            def served():
                policy.runtime = onnx  # the server thread runs the policy while the client waits
                return client.infer(obs)

            fns["server"] = served
            extras["server"] = {"backend": "onnx" if onnx is not None else "eager"}
        results = time_interleaved(fns, calls, warmup) if fns else {}
        for name, extra in extras.items():
            results[name].update(extra)
        policy.runtime = None
    if "compile" in rows:
        try:
            policy.model.compile_blocks()
            results["compile"] = time_interleaved({"compile": chunk}, calls, warmup)["compile"]
            results["compile"]["compile_s"] = results["compile"]["first_ms"] / 1e3
        except Exception as err:  # inductor needs a C++ compiler; report, do not stop the other rows
            results["compile"] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
    for row in results.values():
        if "p50_ms" in row:
            row["actions_per_s"] = n_steps / (row["p50_ms"] / 1e3)
            row["x_realtime"] = row["actions_per_s"] / CONTROL_HZ
    ordered = {name: results[name] for name in LATENCY_ROWS if name in results}
    info = machine_info(torch.device("cpu"))
    return {"config": cfg.train.exp_name, "weights": weights, "n_action_steps": n_steps, "control_hz": CONTROL_HZ,
            "chunk_size": cfg.model.action_head.chunk_size, "rows": ordered, "machine": info,
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def format_latency(r: dict) -> str:
    m = r["machine"]
    load = r["load_average"]
    lines = [f"== chunk latency: {r['config']} | batch 1 | {r['weights']} | {m.get('cpu_model', '')}, "
             f"{m['cpu_cores']} cores, CPU kernels {m['cpu_capability']}, torch {m['torch']} with "
             f"{m['torch_threads']} threads" + (f" | load average {load:.1f} at the start" if load is not None else ""),
             f"one chunk of {r['chunk_size']} actions, {r['n_action_steps']} executed per chunk; "
             f"x realtime = actions/s over LIBERO's {r['control_hz']} Hz control rate",
             f"{'backend':<28}{'p50 ms':>9}{'p99 ms':>9}{'actions/s':>11}{'x realtime':>12}  notes"]
    names = {"eager": "PyTorch eager", "compile": "torch.compile (blocks)", "onnx": "ONNX Runtime",
             "server": "server over localhost"}
    eager = r["rows"].get("eager", {}).get("p50_ms")
    for key, row in r["rows"].items():
        if "error" in row:
            lines.append(f"{names[key]:<28}{'failed: ' + row['error']}")
            continue
        notes = []
        if eager and key != "eager":
            notes.append(f"{eager / row['p50_ms']:.2f}x eager")
        if "compile_s" in row:
            notes.append(f"compile {row['compile_s']:.1f} s")
        if "export_s" in row:
            notes.append(f"export {row['export_s']:.1f} s, max |onnx - torch| {row['max_abs_diff']:.1e}")
        if "backend" in row:
            notes.append(f"serving {row['backend']}")
        lines.append(f"{names[key]:<28}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['actions_per_s']:>11.1f}"
                     f"{row['x_realtime']:>12.1f}  {'; '.join(notes)}")
    return "\n".join(lines)
