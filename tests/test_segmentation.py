import numpy as np
import pytest

from diarize.config import SegmentationConfig
from diarize.segmentation import sliding_windows


def test_windows_cover_regions_with_exact_original_times():
    config = SegmentationConfig(window=1.5, hop=0.5, min_window=0.4)
    regions = np.array([[10.0, 14.2], [20.0, 20.3]])
    w = sliding_windows(regions, 30.0, config)
    first = w.region == 0
    assert w.starts[first][0] == pytest.approx(10.0)
    assert w.ends[first][-1] == pytest.approx(14.2)  # the last window ends at the region end
    assert np.allclose(np.diff(w.starts[first])[:-1], 0.5)
    assert np.allclose(w.ends[first] - w.starts[first], 1.5)
    short = w.region == 1
    assert short.sum() == 1
    assert w.starts[short][0] == pytest.approx(19.95) and w.ends[short][0] == pytest.approx(20.35)


def test_windows_stay_inside_the_audio():
    w = sliding_windows(np.array([[0.0, 0.1], [9.9, 10.0]]), 10.0, SegmentationConfig(min_window=0.5))
    assert w.starts.min() >= 0.0 and w.ends.max() <= 10.0


def test_no_regions_no_windows():
    w = sliding_windows(np.zeros((0, 2)), 5.0)
    assert len(w) == 0
    starts, ends = w.sample_bounds(16000)
    assert len(starts) == len(ends) == 0


def test_sample_bounds():
    w = sliding_windows(np.array([[1.0, 2.5]]), 5.0, SegmentationConfig(window=1.5))
    starts, ends = w.sample_bounds(16000)
    assert starts.tolist() == [16000] and ends.tolist() == [40000]
