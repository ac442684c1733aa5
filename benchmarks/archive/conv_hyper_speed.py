"""Encode/decode time of sas-conv-h on CPU, against sas64-l1 as the anchor in the same process.

64x64 frames in chunks of 64, and one 1024x1024 frame (sas64-l1 tiles it into 256 tiles);
pure mode with the quality gate off, and with it at its default; best of --repeat, with
--threads torch threads. The machine is shared: compare the ratios, not the seconds.

  OMP_NUM_THREADS=1 python benchmarks/archive/conv_hyper_speed.py [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/common.py
from common import best_time  # noqa: E402
from saecodec import SAECodec
from saecodec.data import sas


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    small = sas.simulate(64, seed=7, progress=False).frames.astype(np.float32)
    big = sas.simulate(1, seed=8, cfg=sas.SimConfig(shape=(1024, 1024)), progress=False).frames.astype(np.float32)
    rows = []
    for model in ("sas64-l1", "sas-conv-h"):
        for gate in (None, 0.25):
            codec = SAECodec(model, max_error=gate)
            codec.decode(codec.encode(small[:2]))  # load the network
            for name, x, n in (("64x64 (chunk of 64)", small, len(small)), ("1024x1024", big, 1)):
                t_enc, payload = best_time(lambda: codec.encode(x), args.repeat)
                t_dec, _ = best_time(lambda: codec.decode(payload), args.repeat)
                rows.append({"model": model, "max_error": gate, "frames": name, "encode_ms_per_frame": 1e3 * t_enc / n,
                             "decode_ms_per_frame": 1e3 * t_dec / n, "ratio": x.nbytes / len(payload)})
                print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
