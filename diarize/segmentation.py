"""Sliding windows over speech regions: the units that get one speaker embedding each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SegmentationConfig


@dataclass(frozen=True)
class Windows:
    """Window spans in seconds (``starts``/``ends``) and the index of the speech region each lies in."""

    starts: np.ndarray
    ends: np.ndarray
    region: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def centers(self) -> np.ndarray:
        return (self.starts + self.ends) / 2

    def sample_bounds(self, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and end sample indices of each window."""
        return (np.round(self.starts * sample_rate).astype(np.int64), np.round(self.ends * sample_rate).astype(np.int64))


def sliding_windows(regions: np.ndarray, duration: float, config: SegmentationConfig = SegmentationConfig()) -> Windows:
    """Cover every speech region with windows of ``config.window`` s every ``config.hop`` s.

    The last window of a region ends exactly at the region's end. A region shorter than a window
    gets one window over it, widened symmetrically (into the surrounding audio) to ``min_window``.
    Timestamps are those of the original audio: nothing is trimmed or shifted.
    """
    spans: list[np.ndarray] = []
    region_ids: list[np.ndarray] = []
    for index, (start, end) in enumerate(regions):
        length = end - start
        if length >= config.window:
            offsets = np.arange(0.0, length - config.window + 1e-9, config.hop)
            if length - config.window - offsets[-1] > 1e-6:
                offsets = np.append(offsets, length - config.window)
            region_spans = np.column_stack([start + offsets, start + offsets + config.window])
        else:
            widen = max(config.min_window - length, 0.0) / 2
            region_spans = np.array([[start - widen, end + widen]])
        spans.append(region_spans)
        region_ids.append(np.full(len(region_spans), index, dtype=np.int64))
    if not spans:
        return Windows(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64))
    all_spans = np.clip(np.concatenate(spans), 0.0, duration)
    return Windows(all_spans[:, 0], all_spans[:, 1], np.concatenate(region_ids))
