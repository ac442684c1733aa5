"""The 39 real measured SAS frames in ../shared/data/real-sas: odd sizes, zeros,
negatives, sentinels and NaN holes. NaN holes come back exactly; the pure autoencoder
gives no pointwise guarantee elsewhere (test_bound.py checks the error-bounded mode on
the same frames)."""

from pathlib import Path

import numpy as np
import pytest

from saecodec.codec import SAECodec

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sas"
FILES = sorted(REAL.glob("*.npz")) if REAL.is_dir() else []


@pytest.fixture(scope="module", params=["sas-conv-h", "sas64-l1"])
def default_codec(request):
    return SAECodec(request.param)


@pytest.mark.skipif(not FILES, reason="../shared/data/real-sas not present")
def test_real_frames_round_trip_with_nan_holes(default_codec):
    holes = 0
    for path in FILES:
        frame = np.load(path)["I"]
        assert frame.ndim == 2
        payload = default_codec.encode(frame)
        back = default_codec.decode(payload)
        assert back.shape == frame.shape and back.dtype == frame.dtype
        assert np.array_equal(np.isnan(back), np.isnan(frame))
        assert len(payload) < frame.nbytes
        holes += bool(np.isnan(frame).any())
    assert holes >= 10
