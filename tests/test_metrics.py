import numpy as np
import pytest

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
