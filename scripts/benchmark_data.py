"""Benchmark the data loader: items/s for each dataset, in one process and with 0 / N workers.

    python scripts/benchmark_data.py --dataset data/demo --dataset data/demo_video
    python scripts/benchmark_data.py            # writes demo datasets (PNG and AV1) to a temp dir first

Numbers are items (one sample: every camera, state, an action chunk) per second with random
access, like training. Image size and chunk length default to the demo's 128 and 10.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vggt_vla.data.loader_benchmark import items_per_second, loader_items_per_second, open_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", default=[], help="dataset root or hub id (repeatable)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=30, help="timed batches per loader run")
    parser.add_argument("--items", type=int, default=1000, help="timed items for the single-process run")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--chunk-size", type=int, default=10)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--cameras", nargs="+", default=None, help="camera keys (default: all)")
    args = parser.parse_args()

    tmp = None
    datasets = list(args.dataset)
    if not datasets:
        from vggt_vla.recording.demo_dataset import make_demo_dataset

        tmp = tempfile.TemporaryDirectory(prefix="bench_data_")
        print(f"no --dataset: writing demo datasets (100 episodes, PNG and AV1) under {tmp.name}")
        datasets = [str(make_demo_dataset(Path(tmp.name) / "demo_image", num_episodes=100, progress=False)),
                    str(make_demo_dataset(Path(tmp.name) / "demo_video", num_episodes=100, video=True,
                                          progress=False))]
    cache = str(Path(tmp.name) / "cache") if tmp else None
    for path in datasets:
        ds = open_dataset(path, camera_keys=args.cameras, image_size=args.image_size,
                          chunk_size=args.chunk_size, augment=args.augment, cache_dir=cache)
        kinds = sorted({ds.source.meta.features[f]["dtype"] for f in ds.source.camera_features})
        print(f"\n{path}  ({ds.source.meta.version}, {'/'.join(kinds)}, {len(ds.source.camera_keys)} cameras, "
              f"{len(ds)} items, image {args.image_size}, chunk {args.chunk_size})")
        print(f"  single process, ds[i]     {items_per_second(ds, args.items):8.1f} items/s")
        for w in args.workers:
            rate = loader_items_per_second(ds, w, args.batch_size, args.batches)
            print(f"  DataLoader, {w} workers     {rate:8.1f} items/s   (batch {args.batch_size})")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
