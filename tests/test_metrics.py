import math

import numpy as np
import pytest

from saecodec import metrics
from saecodec.metrics import frame_metrics
from saecodec.models import Transform


def test_metrics_against_hand_computed_values():
    t = Transform("linear", 1.0)
    x = np.array([[[1.0, 3.0], [5.0, 7.0]], [[0.0, 0.0], [2.0, 2.0]]])
    y = x + np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, -1.0]]])
    m = frame_metrics(x, y, t)
    # deviations from frame means: frame 0 (-3,-1,1,3) -> 20, frame 1 (-1,-1,1,1) -> 4
    assert m["rel_l2_t"] == pytest.approx(np.sqrt(2 / 24))
    assert m["rel_l2_t_median_frame"] == pytest.approx(np.median([np.sqrt(1 / 20), np.sqrt(1 / 4)]))
    assert m["rel_l2_i"] == pytest.approx(np.sqrt(2 / (1 + 9 + 25 + 49 + 4 + 4)))
    assert m["psnr_t"] == pytest.approx(20 * np.log10(7 / np.sqrt(2 / 8)))


def test_value_metrics_by_hand():
    x = np.array([[0.0, 1.0], [2.0, 4.0]])
    y = np.array([[0.0, 1.5], [2.0, 3.0]])
    m = metrics.value_metrics(x, y)
    rmse = math.sqrt((0.25 + 1.0) / 4)
    assert m["max_abs"] == 1.0
    assert m["nrmse"] == pytest.approx(rmse / 4)
    assert m["psnr"] == pytest.approx(20 * math.log10(4 / rmse))
    assert m["rel_l2"] == pytest.approx(math.sqrt(1.25) / math.sqrt(21))
    assert metrics.value_metrics(x, x)["psnr"] == float("inf")


def test_offset_free_rel_l2_by_hand():
    ux = np.array([[[1.0, 3.0]]])  # one frame, mean 2, deviations -1, +1
    uy = np.array([[[1.0, 4.0]]])
    assert metrics.offset_free_rel_l2(ux, uy) == pytest.approx((1 / math.sqrt(2), 1 / math.sqrt(2)))
    # two frames: aggregated as sums of squares over all frames, then the ratio; NaN left out
    ux = np.array([[[1.0, 3.0]], [[0.0, 4.0]]])
    uy = np.array([[[1.0, 4.0]], [[np.nan, 4.0]]])
    agg, med = metrics.offset_free_rel_l2(ux, uy)
    assert agg == pytest.approx(1 / math.sqrt(2)) and med == pytest.approx(1 / (2 * math.sqrt(2)))


def test_rel_l2_over_batches_equals_the_whole():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 8)), rng.normal(size=(10, 8))
    acc = metrics.RelL2().add(x[:3], y[:3]).add(x[3:], y[3:])
    assert acc.value == pytest.approx(np.linalg.norm(y - x) / np.linalg.norm(x)) == pytest.approx(metrics.rel_l2(x, y))


def test_radial_profile_and_iq_deviation_by_hand():
    from saecodec import iq

    q = np.array([[[1.0, 1.0], [10.0, 10.0]]])
    x = np.array([[[2.0, 4.0], [1.0, 1.0]]])
    p = iq.radial_profiles(x, q, bins=2)
    assert p[0, 0] == pytest.approx(3.0) and p[0, 1] == pytest.approx(1.0)
    y = np.array([[[3.0, 3.6], [5.0, 5.0]]])  # first bin mean 3.3 (10% off); second bin is background
    d = iq.max_rel_deviation(x, y, q, background=np.array([0.5]), bins=2)
    assert d[0] == pytest.approx(0.1)  # bin 2 (1.0 > 3 * 0.5 is false) is ignored
    d = iq.max_rel_deviation(x, y, q, background=np.array([0.2]), bins=2)
    assert d[0] == pytest.approx(4.0)
    assert np.isnan(iq.max_rel_deviation(x, y, q, background=np.array([10.0]), bins=2)[0])  # no signal bin


def test_one_beam_centre_and_profile_for_every_caller():
    """verify's pixel-radius average and the bench's pixel q share the centre estimator and
    the binning: a ring pattern around an off-centre beam over a flat background."""
    from saecodec import iq
    from saecodec.files import iq as files_iq

    yy, xx = np.indices((60, 80))
    r = np.hypot(yy - 21.0, xx - 50.0)
    frame = 5.0 + 1e4 * np.exp(-r / 4)
    assert iq.beam_centre(frame) == pytest.approx((21.0, 50.0), abs=0.05)
    geo = files_iq.radius_geometry(frame)
    assert geo.centre == iq.beam_centre(frame)
    prof = files_iq.Profiler(geo, frame.shape).profile(frame, np.zeros(frame.shape, bool))
    n, s, _ = iq.bin_sums(frame, *iq.bin_index(iq.pixel_radius(frame.shape, geo.centre), spacing="pixel"))
    np.testing.assert_allclose(prof, iq.mean_profile(n, s))
    np.testing.assert_allclose(iq.pixel_q(frame[None])[0], iq.pixel_radius(frame.shape, geo.centre) + 0.5)
