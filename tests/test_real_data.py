"""The 39 real measured SAS frames in ../shared/data/real-sas: odd sizes, zeros,
negatives, sentinels and NaN holes. Format v1 stores every finite frame and refuses
NaN loudly (masks come with the error-bound format). The pure autoencoder gives no
pointwise guarantee: sentinels (-100) and negative pixels are smeared, measured in the
notes, not asserted here."""

from pathlib import Path

import numpy as np
import pytest

from saecodec.codec import SAECodec
from saecodec.errors import SaecodecError

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sas"
FILES = sorted(REAL.glob("*.npz")) if REAL.is_dir() else []


@pytest.fixture(scope="module")
def default_codec():
    return SAECodec("sas64-l1")


@pytest.mark.skipif(not FILES, reason="../shared/data/real-sas not present")
def test_real_frames_round_trip_or_refuse_nan(default_codec):
    stored = refused = 0
    for path in FILES:
        frame = np.load(path)["I"]
        assert frame.ndim == 2
        if not np.isfinite(frame).all():
            with pytest.raises(SaecodecError, match="NaN"):
                default_codec.encode(frame)
            refused += 1
            continue
        payload = default_codec.encode(frame)
        back = default_codec.decode(payload)
        assert back.shape == frame.shape and back.dtype == frame.dtype
        assert np.isfinite(back).all()
        assert len(payload) < frame.nbytes
        stored += 1
    assert stored >= 20 and stored + refused == len(FILES)
