"""vggt_vla.benchmark: its counts against hand-computed ones (FLOPs of plain linear layers, MFU
from given times and a given peak), and every figure reported on a tiny config of the real
architecture. Nothing here is timed against a threshold; the benchmark prints, it does not judge."""

import dataclasses
import math

import pytest
import torch

from conftest import tiny_config
from vggt_vla import benchmark as benchmark_module
from vggt_vla.benchmark import benchmark, count_train_flops, format_result, matmul_peak_flops, train_figures
from vggt_vla.config import InferenceConfig

FAST = dict(steps=2, warmup=1, inference_repeats=2, matmul_size=256)


@pytest.fixture(scope="module")
def cached(tiny_qwen3):
    """The tiny config, run with a queue of 3 actions per chunk (its inference: section)."""
    cfg = dataclasses.replace(tiny_config(tiny_qwen3), inference=InferenceConfig(n_action_steps=3))
    return benchmark(cfg, batch_size=2, **FAST)


class LinearLayers(torch.nn.Module):
    """Bias-free linear layers behind the model interface the benchmark times (batch -> loss, metrics)."""

    def __init__(self, *widths: int):
        super().__init__()
        self.layers = torch.nn.Sequential(*(torch.nn.Linear(a, b, bias=False) for a, b in zip(widths, widths[1:])))

    def forward(self, batch):
        return self.layers(batch["x"]).square().mean(), {}


def test_train_flops_of_one_linear_layer_match_the_hand_count():
    x = torch.randn(4, 8)  # batch 4, 8 -> 16 features
    # forward 2*4*8*16 = 1024, the weight gradient as much again; the input is data: no gradient
    assert count_train_flops(LinearLayers(8, 16), {"x": x}) == 2048


def test_train_flops_count_the_input_gradient_of_a_hidden_layer():
    x = torch.randn(4, 8)  # 8 -> 16 -> 3
    # first layer: forward + weight gradient 2 * 1024; second: forward, weight and input gradients 3 * 2*4*16*3
    assert count_train_flops(LinearLayers(8, 16, 3), {"x": x}) == 2048 + 1152


def test_mfu_is_compute_flops_per_second_over_the_given_peak():
    phases = {"data": 100.0, "forward": 200.0, "backward": 250.0, "optimizer": 50.0}  # ms
    figures = train_figures(6e9, 4, phases, peak_flops_per_s=2e10)
    # 500 ms of compute (the data phase left out): 6e9 / 0.5 s = 1.2e10 FLOP/s, 60% of 2e10
    assert figures["achieved_flops_per_s"] == pytest.approx(1.2e10)
    assert figures["mfu"] == pytest.approx(0.6)


def test_samples_per_second_include_the_data_phase():
    phases = {"data": 100.0, "forward": 200.0, "backward": 250.0, "optimizer": 50.0}  # ms
    figures = train_figures(6e9, 4, phases, peak_flops_per_s=2e10)
    assert figures["step_ms"] == pytest.approx(600.0) and figures["samples_per_s"] == pytest.approx(4 / 0.6)
    assert figures["flops_per_sample"] == pytest.approx(1.5e9)


def test_the_peak_is_the_fastest_timed_matmul(monkeypatch):
    # A clock on which the three timed 64^3 matmuls take 0.5, 0.25 and 0.4 s.
    readings = iter([0.0, 0.5, 1.0, 1.25, 2.0, 2.4])
    monkeypatch.setattr(benchmark_module.time, "perf_counter", lambda: next(readings))
    assert matmul_peak_flops(torch.device("cpu"), n=64, repeats=3) == pytest.approx(2 * 64 ** 3 / 0.25)


def test_inference_throughput_follows_the_inference_section(cached):
    inf = cached["inference"]
    assert inf["n_action_steps"] == 3
    assert inf["actions_per_s_with_queue"] == pytest.approx(3e3 / inf["predict_action_chunk_ms_median"])


def test_every_figure_is_reported(cached):
    t, inf = cached["train"], cached["inference"]
    assert set(t["phase_ms"]) == {"data", "forward", "backward", "optimizer"}
    for key in ("samples_per_s", "step_ms", "flops_per_step", "achieved_flops_per_s", "matmul_peak_flops_per_s",
                "mfu"):
        assert t[key] > 0, key
    assert 0 < inf["predict_action_chunk_ms_median"] <= inf["predict_action_chunk_ms_p90"]
    assert cached["peak_memory_mb"] > 0 and cached["machine"]["cpu_cores"] >= 1 and cached["machine"]["torch"]
    for line in ("samples/s", "MFU", "predict_action_chunk median", "queue of 3", "peak memory"):
        assert line in format_result(cached)


def test_the_language_model_runs_once_per_instruction(cached):
    t = cached["train"]
    assert t["language_model_forwards_after_warmup"] == 0
    assert t["language_model_forwards_total"] == t["distinct_instructions_seen"] == 2


def test_flops_are_per_sample(tiny_qwen3, cached):
    bigger = benchmark(tiny_config(tiny_qwen3), batch_size=4, **FAST)
    assert math.isclose(bigger["train"]["flops_per_sample"], cached["train"]["flops_per_sample"], rel_tol=1e-6)


def test_ablation_removes_only_the_language_model(tiny_qwen3, cached):
    ablated = benchmark(tiny_config(tiny_qwen3), batch_size=2, ablate_language=True, **FAST)
    assert ablated["language_ablated"] and ablated["train"]["language_model_forwards_total"] == 0
    # a warm cache leaves the step exactly the compute of a model without any language model
    assert ablated["train"]["flops_per_step"] == cached["train"]["flops_per_step"]


def test_geometry_teacher_cold_and_warm_cache(tiny_qwen3, tmp_path):
    from safetensors.torch import save_file

    from test_geometry import TEACHER, align_config
    from vggt_vla.models.vggt import vggt_1b

    save_file({f"aggregator.{k}": v.contiguous() for k, v in vggt_1b(**TEACHER).state_dict().items()},
              str(tmp_path / "model.safetensors"))
    r = benchmark(align_config(tiny_qwen3, str(tmp_path)), batch_size=2, **FAST)
    warm = r["train_warm_teacher_cache"]
    assert warm["teacher_forwards"] == 0  # every teacher feature came from the cache
    assert set(warm["phase_ms"]) == set(r["train"]["phase_ms"])
    # the teacher is training-only: its FLOPs are in the step, and inference does not run it
    plain = benchmark(tiny_config(tiny_qwen3), batch_size=2, **FAST)
    assert r["train"]["flops_per_sample"] > plain["train"]["flops_per_sample"]
    assert r["inference"]["flops_per_sample"] == plain["inference"]["flops_per_sample"] > 0
    assert "warm teacher cache" in format_result(r)


# ---------------------------------------------------------------------------- chunk latency (--latency)
def test_latency_rows_report_actions_per_second_against_the_control_rate(tiny_bert):
    """Eager, ONNX Runtime and the server on localhost, from a config alone (fresh weights); the
    figures are consistent with each other, and no time is judged. torch.compile is left out here
    (minutes of compiling on CI): its row is the same timing around model.compile_blocks()."""
    for package in ("onnxruntime", "onnxscript", "websockets", "msgpack"):
        pytest.importorskip(package, reason="the onnx and server rows need requirements-deploy.txt")
    from vggt_vla.benchmark import format_latency, latency
    from vggt_vla.sim.libero import CONTROL_HZ

    cfg = dataclasses.replace(tiny_config(tiny_bert), inference=InferenceConfig(n_action_steps=3))
    r = latency(cfg, calls=3, warmup=1, rows=("eager", "onnx", "server"))
    assert list(r["rows"]) == ["eager", "onnx", "server"] and r["n_action_steps"] == 3
    for row in r["rows"].values():
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["calls"] == 3
        assert row["actions_per_s"] == pytest.approx(3e3 / row["p50_ms"])
        assert row["x_realtime"] == pytest.approx(row["actions_per_s"] / CONTROL_HZ)
    assert r["rows"]["onnx"]["max_abs_diff"] <= 1e-4 and r["rows"]["onnx"]["export_s"] > 0
    assert r["rows"]["server"]["backend"] == "onnx"
    text = format_latency(r)
    for line in ("PyTorch eager", "ONNX Runtime", "server over localhost", "CPU kernels", "x eager"):
        assert line in text


def test_latency_backends_are_timed_call_by_call_in_turn():
    """time_interleaved: warm-ups first, then one call of each backend per round, the first backend
    rotating, so a drift in the machine's speed falls on every backend alike."""
    from vggt_vla.benchmark import time_interleaved

    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    r = time_interleaved(fns, calls=4, warmup=2)
    assert order[:6] == ["a", "a", "b", "b", "c", "c"]
    assert order[6:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    for row in r.values():
        assert row["calls"] == 4 and 0 <= row["p50_ms"] <= row["p99_ms"]


def test_latency_cli_refuses_unknown_rows_and_a_missing_checkpoint(tmp_path):
    from conftest import run_script
    from test_reliability import one_error_line

    line = one_error_line(run_script("scripts/benchmark.py", "--latency", "--rows", "eager,tensorrt"))
    assert "--rows" in line and "tensorrt" in line
    line = one_error_line(run_script("scripts/benchmark.py", "--latency", "--checkpoint", tmp_path / "none"))
    assert str(tmp_path / "none") in line


def test_side_by_side_rows_time_each_config_in_rounds(tiny_qwen3):
    """--baseline: both models run every round; the deeper one counts more FLOPs; the printout
    names both rows and the ratio against the first."""
    from vggt_vla.benchmark import compare_steps, format_comparison

    cfg = tiny_config(tiny_qwen3)
    deeper = dataclasses.replace(cfg, model=dataclasses.replace(
        cfg.model, simple_backbone=dataclasses.replace(cfg.model.simple_backbone,
                                                       depth=cfg.model.simple_backbone.depth + 1)))
    r = compare_steps({"deeper": deeper, "config": cfg}, batch_size=2, steps=2, rounds=2, warmup=1)
    assert list(r["rows"]) == ["deeper", "config"]
    for row in r["rows"].values():
        assert len(row["rounds_ms"]) == 2 and row["step_ms"] in row["rounds_ms"]
        assert set(row["phase_ms"]) == {"data", "forward", "backward", "optimizer"}
    assert r["rows"]["deeper"]["flops_per_sample"] > r["rows"]["config"]["flops_per_sample"]
    text = format_comparison(r)
    assert "deeper: step" in text and "config: step" in text and "1.00x as fast as the first row" in text


def test_side_by_side_cli_refuses_a_bad_baseline_override():
    from conftest import run_script

    out = run_script("scripts/benchmark.py", "--config", "demo", "--baseline", "model.nope=3")
    assert out.returncode == 2 and "unknown config key 'model.nope'" in out.stderr
