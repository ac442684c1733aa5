"""The 39 real measured SAS frames (saecodec.data.shared): odd sizes, zeros,
negatives, sentinels and NaN holes. NaN holes come back exactly; the pure autoencoder
gives no pointwise guarantee elsewhere (test_bound.py checks the error-bounded mode on
the same frames)."""

import numpy as np
import pytest

from saecodec.codec import SAECodec
from saecodec.data import shared

FILES = shared.files(shared.REAL_SAS)


@pytest.fixture(scope="module", params=["sas-conv-h", "sas64-l1"])
def default_codec(request):
    return SAECodec(request.param)


@pytest.mark.skipif(not FILES, reason="the shared real frames are not on this machine")
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
