"""Throughput of the codec on the CPU (or GPU), directly and through h5py's filter pipeline.

    python benchmarks/throughput.py [--model sas64-l1] [--frames 1000] [--chunk 64]

Times are ratios against an anchor measured in the same process (zstd via numcodecs),
so they can be compared across machines; absolute MB/s are printed too.
"""

from __future__ import annotations

import argparse
import io
import json
import time

import h5py
import numcodecs

from saecodec import hdf5
from saecodec.codec import SAECodec
from saecodec.data import sas


def best_of(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="sas64-l1")
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--device", default=None)
    args = p.parse_args()

    codec = SAECodec(args.model, device=args.device)
    model = codec.resolve_model()
    h, w = model.frame_shape
    x = sas.simulate(args.frames, seed=777, cfg=sas.SimConfig(shape=(h, w)), progress=False).frames
    chunks = [x[i:i + args.chunk] for i in range(0, len(x), args.chunk)]
    mb = x.nbytes / 1e6
    codec.decode(codec.encode(chunks[0]))  # warm-up (model load, first forward)

    payloads = []
    t_enc = best_of(lambda: payloads.__setitem__(slice(None), [codec.encode(c) for c in chunks]))
    t_dec = best_of(lambda: [codec.decode(pl) for pl in payloads])
    nbytes = sum(len(pl) for pl in payloads)

    zstd = numcodecs.Zstd(level=3)
    zp = []
    t_zenc = best_of(lambda: zp.__setitem__(slice(None), [zstd.encode(c) for c in chunks]))
    t_zdec = best_of(lambda: [zstd.decode(pl) for pl in zp])

    hdf5.register()
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        f.create_dataset("x", data=x, chunks=(args.chunk, h, w), **hdf5.SAE(model=model.identity))
    def h5read():
        with h5py.File(bio, "r") as f:
            f["x"][...]
    h5read()
    t_h5 = best_of(h5read)

    out = {
        "model": model.name, "frames": len(x), "chunk_frames": args.chunk, "device": str(codec.device or "auto"),
        "bytes_per_frame": nbytes / len(x), "raw_bytes_per_frame": x[0].nbytes, "ratio": x.nbytes / nbytes,
        "encode_MBps": mb / t_enc, "decode_MBps": mb / t_dec,
        "h5py_decode_MBps": mb / t_h5, "h5py_over_direct_decode": t_h5 / t_dec,
        "zstd_encode_MBps": mb / t_zenc, "zstd_decode_MBps": mb / t_zdec,
        "encode_vs_zstd": t_zenc / t_enc, "decode_vs_zstd": t_zdec / t_dec,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
