"""What the v3 payload's CRC-32 trailer costs: 4 bytes per chunk, and the time of
zlib.crc32 over each payload against the time to encode and decode that chunk.

    nice -n 10 python benchmarks/archive/checksum_cost.py

Chunks: 64 held-out simulated 64x64 frames (``sas.simulate(64, seed=1)``) pure (the gate at
its default) and bounded (abs 1e-2 in log10), and one simulated 1024x1024 Eiger count
frame (uint32, gaps) lossless and poisson; model sas64-l1. Each timing is the best of
``--repeat`` in this process (a shared machine: compare the ratios, not the MB/s).
Writes benchmarks/results/checksum_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import best_time  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "checksum_cost")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from saecodec import chunk, model_store
    from saecodec.bench.datasets import to_domain
    from saecodec.data import sas
    from saecodec.data.detector import simulate_detector

    model = model_store.load("sas64-l1")
    log_model = model.for_log10_input()
    sim = sas.simulate(64, seed=1, progress=False).frames.astype(np.float32)
    counts = simulate_detector(1, seed=3, cfg="eiger-1m", workers=1, progress=False).frames
    gap = (int(np.iinfo(np.uint32).max),)
    cases = [("64 frames 64x64 float32, pure (gate 0.25)", model, sim, {}),
             ("64 frames 64x64 log10 float32, abs 1e-2", log_model, to_domain(sim, "log"), {"error_bound": 1e-2}),
             ("1024x1024 uint32 counts, lossless", model, counts, {"error_bound": 0.5, "mask_values": gap}),
             ("1024x1024 uint32 counts, poisson 1", model, counts,
              {"error_bound": 1.0, "bound_mode": "poisson", "mask_values": gap})]
    rows = []
    for name, m, x, kw in cases:
        p = chunk.encode_chunk(m, x, **kw)
        t_crc = best_time(lambda: zlib.crc32(memoryview(p)[:-4]), args.repeat * 20)[0]
        t_enc = best_time(lambda: chunk.encode_chunk(m, x, **kw), args.repeat)[0]
        t_dec = best_time(lambda: chunk.decode_chunk(m, p), args.repeat)[0]
        rows.append({"chunk": name, "raw_bytes": x.nbytes, "payload_bytes": len(p), "checksum_bytes": 4,
                     "checksum_share_of_bytes": 4 / len(p), "crc32_MBps": len(p) / 1e6 / t_crc,
                     "encode_MBps": x.nbytes / 1e6 / t_enc, "decode_MBps": x.nbytes / 1e6 / t_dec,
                     "crc_share_of_encode": t_crc / t_enc, "crc_share_of_decode": t_crc / t_dec})
        print(json.dumps(rows[-1]), flush=True)
    res = {"command": "python benchmarks/archive/checksum_cost.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    lines = [f"# Cost of the payload checksum ({res['date']})", "", f"Command: `{res['command']}`", "",
             "CRC-32 (zlib.crc32) over the payload, as the decoder checks it; MB/s of crc32 over payload "
             "bytes, of encode/decode over raw bytes; best of repeats on a shared machine.", "",
             "| chunk | raw bytes | payload bytes | checksum share of bytes | crc32 MB/s | encode MB/s | "
             "decode MB/s | crc share of encode time | crc share of decode time |", "|---|" + "---|" * 8]
    for r in rows:
        lines.append(f"| {r['chunk']} | {r['raw_bytes']:,} | {r['payload_bytes']:,} | "
                     f"{100 * r['checksum_share_of_bytes']:.3f}% | {r['crc32_MBps']:.0f} | {r['encode_MBps']:.1f} | "
                     f"{r['decode_MBps']:.1f} | {100 * r['crc_share_of_encode']:.3f}% | "
                     f"{100 * r['crc_share_of_decode']:.3f}% |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
