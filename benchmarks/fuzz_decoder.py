"""Fuzz the decoder: any byte string yields a correctly shaped array or a SaecodecError.

    python benchmarks/fuzz_decoder.py --cases 100000

Seeds are real payloads of every kind, written with the committed 16x16 fixture model:
format 3 (pure autoencoder with float16 and float32 latent values, the quality gate with
coded and exact fallback frames and with latents dropped, NaN masks, abs and rel bounds,
residual planes with and without the network, integer and big-endian chunks, raw and
deflated lossless chunks; the compiled coder's pwrel, poisson and lossless streams with
sentinels, mask_below, a frame mask, float16, with and without the network's prediction)
and the committed format 1 and 2 fixtures; payloads of the shipped whole-frame
conv-hyper model sas-conv-h (hyperprior latents: pure, gated, another level, bounded with
the network's prediction), decoded with that model; and payloads of two small wavelet-family
models (the C engine's message: static tables, adaptive counts; gated, target_error, odd
sizes with NaN, bounded with the wavelet prediction). Hypothesis mutates
them (truncation, bit flips, overwritten bytes, appended bytes) or draws random bytes
behind a valid header prefix. Format 3 payloads carry a checksum that rejects almost
every mutation before parsing, so half of their mutations are re-sealed (the checksum
recomputed) to reach the section parsers behind it. Prints the outcome counts, the
slowest case and the peak memory; exits non-zero on any other exception.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import blobs  # noqa: E402

from saecodec import chunk  # noqa: E402
from saecodec.coding import payload as fmt  # noqa: E402
from saecodec.errors import SaecodecError  # noqa: E402
from saecodec.models import load_file  # noqa: E402


def seed_payloads(model) -> list[bytes]:
    x = np.log10(blobs(3, seed=2)).astype(np.float32)
    xn = x.copy()
    xn[0, :3, :3] = np.nan
    xn[1, :, 5] = np.inf
    ints = (blobs(2, shape=(20, 37), seed=3) * 10).astype(np.uint16)
    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.uniform(1, 300, (3, 1, 1)) * np.ones((3, 20, 37))).astype(np.int32)
    odd = x.copy()
    odd[1] = rng.standard_normal((16, 16)) * 3
    odd[2] = 1000.0
    odd[2, 3, 3] = np.nextafter(np.float32(1000), np.float32(2000))  # stored exactly by the gate
    sentinels = counts.copy()
    sentinels[:, 4, :] = -1
    sentinels[:, 7, 7] = -2
    frame_mask = np.zeros((20, 37), bool)
    frame_mask[3:5, 10:20] = True
    seeds = [
        chunk.encode_chunk(model, x, max_error=None),
        chunk.encode_chunk(model, x.astype(np.float64), weight_dtype="float32"),
        chunk.encode_chunk(model, xn),
        chunk.encode_chunk(model, xn, error_bound=1e-2),
        chunk.encode_chunk(model, x, error_bound=1.0),
        chunk.encode_chunk(model, x, error_bound=1e-3, bound_mode="rel"),
        chunk.encode_chunk(model, ints, error_bound=2),
        chunk.encode_chunk(model, rng.standard_normal((2, 5, 5)), error_bound=0.0),  # raw, deflate cannot help
        chunk.encode_chunk(model, np.zeros((3, 4, 4)), error_bound=0.0),  # raw, deflated
        chunk.encode_chunk(model, odd, max_error=0.05),  # gate: coded and exact fallback frames
        chunk.encode_chunk(model, counts),  # gate: every frame falls back, no latents
        chunk.encode_chunk(model, xn.astype(">f4"), max_error=0.1),  # big-endian, masked, gate
        chunk.encode_chunk(model, np.full((2, 16, 16), 2**60 + 1, np.int64), error_bound=0.5),  # raw int64
        # the compiled coder's streams (issue #14): pwrel (with and without the network's
        # prediction), poisson and lossless counts with sentinels, mask_below, a frame mask, float16
        chunk.encode_chunk(model, x, error_bound=0.01, bound_mode="pwrel"),
        chunk.encode_chunk(model, blobs(3, seed=4).astype(np.float32), error_bound=0.05, bound_mode="pwrel",
                           predictor="network"),
        chunk.encode_chunk(model, sentinels, error_bound=1.0, bound_mode="poisson", mask_values=[-1, -2]),
        chunk.encode_chunk(model, sentinels, error_bound=0.5, mask_values=[-1, -2]),  # lossless
        chunk.encode_chunk(model, sentinels.astype(np.int64) * 2**40, error_bound=0.5, mask_below=0),
        chunk.encode_chunk(model, counts.astype(np.float64), error_bound=1e-3, mask=frame_mask),
        chunk.encode_chunk(model, x.astype(np.float16), error_bound=0.5),
        chunk.encode_chunk(model, np.log10(blobs(3, seed=5)), error_bound=1e-2, predictor="network"),
    ]
    fixtures = sorted((ROOT / "tests" / "fixture" / "saecodec").glob("v[12]/codec.*/encoded.*.dat"))
    return seeds + [p.read_bytes() for p in fixtures]


def hyperprior_seeds() -> tuple:
    """The shipped whole-frame conv-hyper model's payloads (latent kind 'hyperprior'): pure,
    gated with frames that fall back, and bounded with the network's prediction."""
    from saecodec import model_store
    from saecodec.data import sas

    model = model_store.load("sas-conv-h")
    x = sas.simulate(3, seed=1, progress=False).frames.astype(np.float32)
    x[0, :4, :9] = np.nan
    rng = np.random.default_rng(2)
    odd = x.copy()
    odd[1] = rng.poisson(5, (64, 64))
    return model, [chunk.encode_chunk(model, x, max_error=None), chunk.encode_chunk(model, odd, max_error=0.1),  # one frame falls back
                   chunk.encode_chunk(model, x[:, :40, :50], level=2.5),
                   chunk.encode_chunk(model, np.log10(x[1:]), error_bound=1e-2, predictor="network")]


def wavelet_seeds() -> list:
    """Payloads of the wavelet family (latent kind 'wavelet', the C engine's message): two small
    models (static tables with zero segments and RDO; adaptive counts with adaptive binary
    tables), pure with the gate, target_error per frame, odd frame sizes with NaN, bounded with
    the wavelet prediction."""
    from saecodec.data import sas
    from saecodec.models.wavelet import wavelet_model

    x = sas.simulate(3, seed=1, progress=False).frames.astype(np.float32)
    xn = x.copy()
    xn[0, :4, :9] = np.nan
    out = []
    for kw in ({"levels": 3, "rdo_lambda": 0.08}, {"levels": 3, "adapt": {"rate": 32, "smax": 7}, "nsets": 2}):
        m = wavelet_model("fuzz-wavelet", rate_levels=4, **kw)
        m.freeze()
        out += [(m, chunk.encode_chunk(m, xn)), (m, chunk.encode_chunk(m, x, target_error=0.02, max_error=None)),
                (m, chunk.encode_chunk(m, x[:, :37, :21], level=0)),
                (m, chunk.encode_chunk(m, np.log10(x[1:]), error_bound=1e-2, predictor="network"))]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--no-hyperprior", action="store_true", help="leave out the shipped sas-conv-h model's seeds")
    ap.add_argument("--no-wavelet", action="store_true", help="leave out the wavelet family's seeds")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fuzz_decoder.json")
    args = ap.parse_args(argv)
    model = load_file(ROOT / "tests" / "fixture" / "models" / "fixture-16.safetensors")
    seeds = [(model, p) for p in seed_payloads(model)]
    if not args.no_hyperprior:
        hyper, more = hyperprior_seeds()
        seeds += [(hyper, p) for p in more]
    if not args.no_wavelet:
        seeds += wavelet_seeds()
    outcomes: Counter = Counter()
    resealed = [0]
    slowest = [0.0, b""]
    failures = []

    def one(model, buf: bytes):
        t = time.perf_counter()
        try:
            out = chunk.decode_chunk(model, buf)
            assert isinstance(out, np.ndarray) and out.ndim >= 2, "decoded to a non-array"
            outcomes["array"] += 1
        except SaecodecError as e:
            outcomes[type(e).__name__] += 1
        except Exception as e:  # noqa: BLE001 - the point of the fuzzer
            failures.append((repr(e), buf.hex()))
            outcomes["OTHER"] += 1
        dt = time.perf_counter() - t
        if dt > slowest[0]:
            slowest[:] = [dt, buf]

    mutation = st.tuples(
        st.integers(0, len(seeds) - 1),
        st.floats(0, 1),
        st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255), st.booleans()), max_size=8),
        st.binary(max_size=64),
        st.booleans(),
    )

    @settings(max_examples=args.cases, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(mutation, st.tuples(st.integers(0, len(seeds) - 1), st.integers(0, 24), st.binary(max_size=256))))
    def fuzz(case):
        if len(case) == 5:
            which, cut, edits, tail, reseal = case
            model, buf = seeds[which][0], bytearray(seeds[which][1])
            v3 = buf[2] == fmt.VERSION
            if v3 and reseal:
                buf = buf[:-fmt.CHECKSUM_BYTES]
            for pos, value, flip in edits:
                i = int(pos * (len(buf) - 1))
                buf[i] = buf[i] ^ (1 << (value % 8)) if flip else value
            buf = bytes(buf[:max(int(cut * len(buf)), 0)]) + tail if cut < 0.9 else bytes(buf) + tail
            if v3 and reseal:
                buf = fmt.seal(bytearray(buf))
                resealed[0] += 1
        else:
            which, keep, rest = case
            model, buf = seeds[which][0], seeds[which][1][:keep] + rest
        one(model, buf)

    t0 = time.time()
    fuzz()
    total = sum(outcomes.values())
    result = {
        "cases": total,
        "seeds": {"format 3": sum(s[2] == fmt.VERSION for _, s in seeds), "format 1 and 2": sum(s[2] < 3 for _, s in seeds),
                  "sas-conv-h (hyperprior)": sum(m.family == "conv-hyper" for m, _ in seeds),
                  "wavelet": sum(m.family == "wavelet" for m, _ in seeds)},
        "resealed_v3_mutations": resealed[0],
        "outcomes": dict(outcomes),
        "seconds": round(time.time() - t0, 1),
        "slowest_case_s": round(slowest[0], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "failures": failures[:20],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "failures"}, indent=1))
    for f in failures[:5]:
        print("FAILURE", f[0], f[1][:200])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
