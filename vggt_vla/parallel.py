"""Jobs in parallel processes: closed-loop evaluation and LIBERO demonstrations both run simulators,
which are CPU-bound Python, so parallelism needs processes rather than threads."""

from __future__ import annotations

from typing import Callable, Iterator, Optional


def map_jobs(fn: Callable, jobs: list, workers: int = 1, initializer: Optional[Callable] = None,
             initargs: tuple = ()) -> Iterator:
    """Yield fn(job) for every job, in order: in this process (workers <= 1) or in `workers`
    spawned processes, each of which runs `initializer(*initargs)` once. Spawn, not fork: MuJoCo's
    GL contexts (and torch's thread pools) do not survive a fork. fn, the jobs and initargs must
    be picklable when workers > 1."""
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, jobs)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=initializer,
                             initargs=initargs) as pool:
        yield from pool.map(fn, jobs)
