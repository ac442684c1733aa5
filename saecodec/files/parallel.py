"""Bounded parallel map over chunks: a local thread pool, or a dask.distributed cluster.

At most ``in_flight`` tasks (two per worker by default) are submitted at a time, so memory
stays a few chunks per worker whatever the file size. Results come back to the calling
thread, which alone writes: an HDF5 file has one writer, and h5py serialises calls anyway.
Both executors speak ``concurrent.futures``: threads for one machine (torch and numpy
release the GIL in the heavy parts), ``distributed.Client(...).get_executor()`` for a
cluster, whose workers open the input by path (a shared file system) and send back only
the compressed bytes.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os

from ..errors import SaecodecError


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Pool:
    """``Pool(scheduler=None, workers=None)``: threads, or the dask.distributed scheduler at
    ``scheduler`` (an address such as ``tcp://host:8786`` or a ``distributed.Client``)."""

    def __init__(self, scheduler=None, workers: int | None = None):
        self.client = None
        self._own_client = False
        self._torch_threads = None
        if scheduler is not None:
            try:
                from distributed import Client
            except ImportError:  # pragma: no cover - distributed is a dependency
                raise SaecodecError("--scheduler needs dask.distributed: pip install distributed") from None
            if isinstance(scheduler, str):
                try:
                    self.client = Client(scheduler, timeout="20s")
                except (OSError, TimeoutError) as e:
                    raise SaecodecError(f"cannot reach the dask scheduler at {scheduler}: {e}") from None
                self._own_client = True
            else:
                self.client = scheduler
            self.executor = self.client.get_executor(pure=False)
            self.workers = max(1, sum(self.client.nthreads().values()))
        else:
            self.workers = int(workers) if workers else cpu_count()
            if self.workers < 1:
                raise SaecodecError(f"--workers must be >= 1, got {workers}")
            self.executor = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="saecodec")
            self._share_cores()

    def _share_cores(self):
        """Each worker thread gets its share of the cores for torch's own threads, so the
        pool does not oversubscribe the machine (restored on close)."""
        if self.workers <= 1:
            return
        import torch

        self._torch_threads = torch.get_num_threads()
        torch.set_num_threads(max(1, cpu_count() // self.workers))

    def imap_unordered(self, fn, items, in_flight: int | None = None):
        """Yields ``(item, fn(item))`` as tasks finish; an exception cancels what is pending."""
        limit = max(1, in_flight or 2 * self.workers)
        it = iter(items)
        pending: dict = {}

        def fill():
            for item in it:
                pending[self.executor.submit(fn, item)] = item
                if len(pending) >= limit:
                    return

        try:
            fill()
            while pending:
                done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    item = pending.pop(fut)
                    yield item, fut.result()
                fill()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self):
        with contextlib.suppress(Exception):
            self.executor.shutdown(wait=True, cancel_futures=True) if self.client is None else None
        if self._torch_threads is not None:
            import torch

            torch.set_num_threads(self._torch_threads)
            self._torch_threads = None
        if self._own_client:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
