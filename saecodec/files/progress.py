"""Progress bar with throughput (MB/s of input) and the running compression ratio."""

from __future__ import annotations

import sys


class Progress:
    def __init__(self, total_bytes: int, enabled: bool = True, desc: str = "compress"):
        self.raw = self.stored = 0
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=desc, file=sys.stderr,
                            dynamic_ncols=True, disable=None, smoothing=0.1)

    def update(self, raw: int, stored: int) -> None:
        self.raw += raw
        self.stored += stored
        if self.bar is not None:
            self.bar.update(raw)
            if self.stored:
                self.bar.set_postfix_str(f"ratio {self.raw / self.stored:.1f}x", refresh=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
