"""scripts/dataset_stats.py, scripts/benchmark_data.py and scripts/make_demo_dataset.py."""

import functools

import pytest

from conftest import run_script
from vggt_vla.data.loader_benchmark import items_per_second, loader_items_per_second, open_dataset
from vggt_vla.recording.demo_dataset import make_demo_dataset
from vggt_vla.data.meta import DatasetError
from vggt_vla.data.dataset_report import parse_episodes, summarize
from synthetic_data import make_synthetic_dataset
from vggt_vla.data.writer import available_av1_encoder

run = functools.partial(run_script, timeout=120)

KINDS = {
    "v21-image": dict(version="v2.1", camera_dtype="image"),
    "v30-image": dict(version="v3.0", camera_dtype="image"),
    "v21-h264": dict(version="v2.1", camera_dtype="video", video_codec="libx264"),
    "v30-av1": dict(version="v3.0", camera_dtype="video", video_codec=available_av1_encoder() or "libx264"),
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("tools")
    out = {name: make_synthetic_dataset(base / name, image_size=64, **kw).root for name, kw in KINDS.items()}
    out["demo"] = make_demo_dataset(base / "demo", num_episodes=6, progress=False)
    return out


@pytest.mark.parametrize("name", [*KINDS, "demo"])
def test_summary_of_every_dataset_kind(roots, name):
    text = summarize(str(roots[name]))
    version = "v2.1" if name.startswith("v21") else "v3.0"
    assert f"codebase version {version}" in text
    assert "fps              10" in text
    assert "observation.state" in text and "float32" in text and "[8]" in text
    if name == "demo":
        assert "episodes         6" in text and "[128, 128, 3]" in text
    else:
        assert "episodes         4" in text and "frames           31" in text
        assert "task number 0" in text
    assert "statistics (" in text and "mean" in text and "q99" in text  # v2.1 quantiles computed
    if "h264" in name or "av1" in name:
        assert "codec " in text


def test_summary_filters(roots):
    text = summarize(str(roots["v30-image"]), task="number 1", features=["action"])
    assert "episodes         1 of 4" in text and "frames           12 of 31" in text
    assert "task number 0" not in text
    assert "  action\n" in text and "  observation.state\n" not in text
    text = summarize(str(roots["v21-image"]), episodes=parse_episodes("0:2,3"), compute=True)
    assert "episodes         3 of 4" in text and "computed from the data" in text
    with pytest.raises(DatasetError, match="no episode"):
        summarize(str(roots["v30-image"]), task="nothing like this")
    with pytest.raises(DatasetError, match="unknown features"):
        summarize(str(roots["v30-image"]), features=["nope"])
    assert parse_episodes("0:3,7") == [0, 1, 2, 7]


def test_dataset_stats_cli(roots, tmp_path):
    done = run("scripts/dataset_stats.py", "--dataset", roots["v30-av1"], "--episodes", "1:3")
    assert done.returncode == 0, done.stderr
    assert "codebase version v3.0" in done.stdout and "episodes         2 of 4" in done.stdout
    done = run("scripts/dataset_stats.py", "--dataset", tmp_path)
    assert done.returncode == 2 and "info.json is missing" in done.stderr


def test_benchmark_functions(roots, tmp_path):
    for name in ("v30-image", "v30-av1"):
        ds = open_dataset(roots[name], image_size=64, chunk_size=10, cache_dir=str(tmp_path))
        assert items_per_second(ds, num_items=40) > 0
        assert loader_items_per_second(ds, 0, batch_size=4, num_batches=3) > 0


def test_benchmark_cli(roots, tmp_path):
    done = run("scripts/benchmark_data.py", "--dataset", roots["v21-h264"], "--workers", "0", "--batches",
                      "2", "--items", "20", "--batch-size", "4", VGGT_VLA_CACHE=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "single process" in done.stdout and "DataLoader, 0 workers" in done.stdout and "items/s" in done.stdout


def test_make_demo_dataset_cli(tmp_path):
    done = run("scripts/make_demo_dataset.py", "--out", tmp_path / "demo", "--episodes", "3")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo" / "meta" / "info.json").is_file()
    done = run("scripts/make_demo_dataset.py", "--out", tmp_path / "demo", "--episodes", "3")
    assert done.returncode != 0 and "overwrite" in done.stderr
