"""vggt_vla.benchmark on a tiny config of the real architecture: every figure is reported and
consistent. Nothing here is timed against a threshold; the benchmark prints, it does not judge."""

import math

import pytest

from conftest import tiny_config
from vggt_vla.benchmark import benchmark, format_result

FAST = dict(steps=2, warmup=1, inference_repeats=2, matmul_size=256)


@pytest.fixture(scope="module")
def cached(tiny_qwen3):
    return benchmark(tiny_config(tiny_qwen3), batch_size=2, **FAST)


def test_every_figure_is_reported_and_consistent(cached):
    t = cached["train"]
    assert set(t["phase_ms"]) == {"data", "forward", "backward", "optimizer"}
    assert math.isclose(t["step_ms"], sum(t["phase_ms"].values()))
    assert math.isclose(t["samples_per_s"], 2 / (t["step_ms"] / 1e3))
    assert t["flops_per_step"] > 0 and math.isclose(t["flops_per_sample"], t["flops_per_step"] / 2)
    assert math.isclose(t["mfu"], t["achieved_flops_per_s"] / t["matmul_peak_flops_per_s"])
    assert cached["peak_memory_mb"] > 0
    inf = cached["inference"]
    assert 0 < inf["predict_action_chunk_ms_median"] <= inf["predict_action_chunk_ms_p90"]
    assert math.isclose(inf["actions_per_s_with_queue"],
                        inf["n_action_steps"] / (inf["predict_action_chunk_ms_median"] / 1e3))
    assert cached["machine"]["cpu_cores"] >= 1 and cached["machine"]["torch"]
    for line in ("samples/s", "MFU", "predict_action_chunk median", "peak memory"):
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
