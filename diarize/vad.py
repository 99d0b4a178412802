"""Voice activity detection with Silero VAD (weights ship in the ``silero-vad`` wheel)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import percentile_filter

from .config import VADConfig

_CHUNK = 512  # Silero's frame at 16 kHz: 32 ms
_SAMPLE_RATE = 16000


def loudness_gain(samples: np.ndarray, target_rms_dbfs: float = -23.0, max_gain_db: float = 40.0) -> float:
    """Linear gain (>= 1) that brings loud speech (99th percentile of 32 ms frame RMS) near ``target_rms_dbfs``.

    Quiet recordings (e.g. -40 dBFS meeting mixes) otherwise lose speech in the VAD. Never attenuates.
    """
    n_frames = len(samples) // _CHUNK
    if n_frames == 0:
        return 1.0
    frames = samples[: n_frames * _CHUNK].reshape(n_frames, _CHUNK)
    rms = np.sqrt(np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / _CHUNK)
    speech_level = float(np.percentile(rms, 99))
    if speech_level <= 1e-7:
        return 1.0
    return float(10 ** (max(0.0, min(max_gain_db, target_rms_dbfs - 20 * np.log10(speech_level))) / 20))


class SileroVAD:
    """Speech regions of a 16 kHz mono signal.

    Long signals are cut into parallel streams run as one batch (each stream warmed up on the
    second before it), which makes Silero's sequential model about 20x faster on a CPU.
    """

    frame_duration = _CHUNK / _SAMPLE_RATE

    def __init__(self, config: VADConfig = VADConfig(), stream_seconds: float = 10.0, warmup_seconds: float = 3.0):
        from silero_vad import load_silero_vad

        self.config = config
        self.model = load_silero_vad()
        self.stream_chunks = int(stream_seconds * _SAMPLE_RATE) // _CHUNK
        self.warmup_chunks = int(warmup_seconds * _SAMPLE_RATE) // _CHUNK

    @torch.inference_mode()
    def speech_probabilities(self, samples: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """One speech probability per 32 ms chunk of ``samples``, scaled by ``gain`` and clipped on the fly
        (hours of audio are never copied)."""
        n_chunks = -(-len(samples) // _CHUNK)
        if n_chunks == 0:
            return np.zeros(0, dtype=np.float32)
        full = len(samples) // _CHUNK
        body = samples[: full * _CHUNK].reshape(full, _CHUNK)
        tail = np.zeros(_CHUNK, dtype=np.float32)
        tail[: len(samples) - full * _CHUNK] = samples[full * _CHUNK :]
        n_streams = -(-n_chunks // self.stream_chunks)
        starts = np.arange(n_streams) * self.stream_chunks
        warm = np.minimum(starts, self.warmup_chunks)
        steps = self.stream_chunks + int(warm.max())
        probs = np.zeros(n_chunks, dtype=np.float32)
        self.model.reset_states()
        batch = np.zeros((n_streams, _CHUNK), dtype=np.float32)
        for step in range(steps):
            index = starts - warm + step
            valid = index < np.minimum(starts + self.stream_chunks, n_chunks)
            batch[:] = 0.0
            rows = np.flatnonzero(valid & (index < full))
            batch[rows] = body[index[rows]]
            batch[valid & (index == full)] = tail
            if gain != 1.0:
                np.clip(batch * np.float32(gain), -1.0, 1.0, out=batch)
            out = self.model(torch.from_numpy(batch), _SAMPLE_RATE).numpy().reshape(-1)
            keep = valid & (step >= warm)
            probs[index[keep]] = out[keep]
        self.model.reset_states()
        return probs

    def __call__(self, samples: np.ndarray, energies_db: np.ndarray | None = None) -> np.ndarray:
        """Speech regions as a ``(k, 2)`` float array of [start, end] seconds, sorted, non-overlapping.

        ``energies_db`` (from :func:`frame_energies_db`) saves recomputing them when the caller has them."""
        gain = loudness_gain(samples, self.config.target_rms_dbfs) if self.config.normalize_loudness else 1.0
        probs = self.speech_probabilities(samples, gain)
        regions = regions_from_probabilities(probs, self.frame_duration, len(samples) / _SAMPLE_RATE, self.config)
        if self.config.refine_boundaries:
            energies_db = frame_energies_db(samples) if energies_db is None else energies_db
            regions = refine_boundaries(regions, energies_db, len(samples) / _SAMPLE_RATE, self.config)
        return regions


def regions_from_probabilities(probs: np.ndarray, frame: float, duration: float, config: VADConfig) -> np.ndarray:
    """Hysteresis thresholding, then bridging short pauses, dropping short bursts and padding."""
    on = config.threshold
    off = config.neg_threshold if config.neg_threshold is not None else max(on - 0.15, 0.01)
    regions: list[list[float]] = []
    active = False
    start = 0
    for i, p in enumerate(probs):
        if not active and p >= on:
            active, start = True, i
        elif active and p < off:
            active = False
            regions.append([start * frame, i * frame])
    if active:
        regions.append([start * frame, len(probs) * frame])
    merged: list[list[float]] = []
    for region in regions:
        if merged and region[0] - merged[-1][1] < config.min_silence:
            merged[-1][1] = region[1]
        else:
            merged.append(region)
    kept = [r for r in merged if r[1] - r[0] >= config.min_speech]
    out = np.array(kept, dtype=np.float64).reshape(-1, 2)
    if len(out):
        out[:, 0] = np.maximum(out[:, 0] - config.speech_pad, 0.0)
        out[:, 1] = np.minimum(out[:, 1] + config.speech_pad, duration)
        # Padding can make neighbours touch: keep regions disjoint.
        out[1:, 0] = np.maximum(out[1:, 0], out[:-1, 1])
    return out


_ENERGY_HOP = 160  # 10 ms at 16 kHz; energy frames are two hops (20 ms) long
ENERGY_STEP = _ENERGY_HOP / _SAMPLE_RATE  # seconds between the frames of frame_energies_db
_ENERGY_RUN = 3  # frames above the threshold in a row that count as sound (30 ms), so clicks do not
_MIN_CONTRAST_DB = 10.0  # speech this far above the background at least, or edges are left alone
_MAX_DEPTH_DB = 35.0  # sound this far below the speech level is never speech


def frame_energies_db(samples: np.ndarray, block_hops: int = 60_000) -> np.ndarray:
    """Energy (dB) of 20 ms frames every 10 ms, computed block by block (hours of audio are never copied)."""
    hops = len(samples) // _ENERGY_HOP
    per_hop = np.empty(hops, dtype=np.float64)
    for first in range(0, hops, block_hops):
        block = samples[first * _ENERGY_HOP : min(hops, first + block_hops) * _ENERGY_HOP].reshape(-1, _ENERGY_HOP)
        per_hop[first : first + len(block)] = np.einsum("ij,ij->i", block, block, dtype=np.float64)
    frames = (per_hop[:-1] + per_hop[1:]) / (2 * _ENERGY_HOP)
    return 10.0 * np.log10(frames + 1e-12)


def _loud_frames(energies_db: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """Frames inside a run of at least ``_ENERGY_RUN`` frames above ``threshold`` (so clicks are not sound)."""
    above = (energies_db > threshold).astype(np.int8)
    return np.convolve(above, np.ones(_ENERGY_RUN, np.int8), "same") >= _ENERGY_RUN


def _inside_regions(regions: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Regions (seconds) as energy-frame indices ``[a, b)``, and the mask of the frames they cover."""
    index = np.clip(np.round(np.asarray(regions, dtype=np.float64).reshape(-1, 2) / ENERGY_STEP).astype(np.int64), 0, n)
    inside = np.zeros(n, dtype=bool)
    for a, b in index:
        inside[a:b] = True
    return index, inside


def speech_level_db(regions: np.ndarray, energies_db: np.ndarray) -> float | None:
    """The speech level (dB re full scale): the 95th percentile of the frame energies inside ``regions``;
    None when the regions cover no frame."""
    return _level_inside(energies_db, _inside_regions(regions, len(energies_db))[1])


def _level_inside(energies_db: np.ndarray, inside: np.ndarray) -> float | None:
    return float(np.percentile(energies_db[inside], 95)) if inside.any() else None


def _speech_against_background(
    regions: np.ndarray, energies_db: np.ndarray
) -> tuple[np.ndarray, float, float] | None:
    """Regions (seconds) as energy-frame indices ``[a, b)``, the speech level (:func:`speech_level_db`)
    and the file's floor (10th percentile); None when no speech stands ``_MIN_CONTRAST_DB`` above the floor."""
    index, inside = _inside_regions(regions, len(energies_db))
    level = _level_inside(energies_db, inside)
    if level is None:
        return None
    floor = float(np.percentile(energies_db, 10))
    if level - floor < _MIN_CONTRAST_DB:
        return None
    return index, level, floor


def _fill_short_gaps(active: np.ndarray, max_gap: int) -> np.ndarray:
    """``active`` with inactive runs of at most ``max_gap`` frames between two active frames set active."""
    out = active.copy()
    gap_starts = np.flatnonzero(active[:-1] & ~active[1:]) + 1
    gap_ends = np.flatnonzero(~active[:-1] & active[1:]) + 1
    if len(gap_ends) and len(gap_starts) and gap_ends[0] < gap_starts[0]:
        gap_ends = gap_ends[1:]  # the leading silence is not between two sounds
    for start, end in zip(gap_starts, gap_ends):
        if end - start <= max_gap:
            out[start:end] = True
    return out


def refine_boundaries(regions: np.ndarray, energies_db: np.ndarray, duration: float, config: VADConfig) -> np.ndarray:
    """Move each region's edges, by at most ``refine_reach``, to where the signal's energy rises above and
    falls below a per-file threshold.

    Silero's edges trail the speech by tens of milliseconds on both sides (soft onsets and word endings
    are missed); the energy of the signal places them to 10 ms. An edge grows while the sound goes on
    (dips shorter than ``refine_gap`` bridged) and shrinks when the region starts or ends in silence.
    """
    speech = _speech_against_background(regions, energies_db)
    if speech is None:  # no speech above the background to place edges by
        return regions
    index, level, floor = speech
    n, frame = len(energies_db), ENERGY_STEP
    threshold = max(floor + config.refine_level * (level - floor), level - _MAX_DEPTH_DB)
    sound = _fill_short_gaps(_loud_frames(energies_db, threshold), int(round(config.refine_gap / frame)))
    reach = int(round(config.refine_reach / frame))
    out = []
    for a, b in index:
        first, last = min(a, n - 1), min(max(b - 1, 0), n - 1)
        if sound[first]:
            while first > 0 and a - first < reach and sound[first - 1]:
                first -= 1
        else:
            ahead = np.flatnonzero(sound[first : first + reach])
            first = first + int(ahead[0]) if len(ahead) else first
        if sound[last]:
            while last < n - 1 and last - b + 1 < reach and sound[last + 1]:
                last += 1
        else:
            behind = np.flatnonzero(sound[max(0, last - reach) : last + 1])
            last = max(0, last - reach) + int(behind[-1]) if len(behind) else last
        if last < first:  # no sound inside: the VAD's region stands as it was
            first, last = min(a, n - 1), min(max(b - 1, 0), n - 1)
        out.append([first * frame, (last + 2) * frame])  # a frame is two hops long
    merged: list[list[float]] = []
    for first_s, end_s in out:  # regions whose edges grew into each other become one
        if merged and first_s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end_s)
        else:
            merged.append([first_s, end_s])
    refined = np.array(merged, dtype=np.float64).reshape(-1, 2)
    refined[:, 1] = np.minimum(refined[:, 1], duration)
    return refined[refined[:, 1] - refined[:, 0] >= config.min_speech]


def _sound(
    regions: np.ndarray, energies_db: np.ndarray, floor_window: float, level: float, min_depth_db: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """``regions`` as energy-frame indices and the mask of frames that sound against the local noise floor
    (see :func:`interior_pauses`); None when no speech stands above the background."""
    speech = _speech_against_background(regions, energies_db)
    if speech is None:
        return None
    index, speech_level, _ = speech
    size = min(max(int(round(floor_window / ENERGY_STEP)), 1), len(energies_db))  # longer than the file is the file's floor
    floor = percentile_filter(energies_db, 10, size=size, mode="nearest")
    threshold = np.clip(floor + level * (speech_level - floor), speech_level - _MAX_DEPTH_DB, speech_level - min_depth_db)
    centres = _loud_frames(energies_db, threshold)  # the middle frames of each run: widen to whole runs
    return index, np.convolve(centres.astype(np.int8), np.ones(_ENERGY_RUN, np.int8), "same") > 0


def _quiet_runs(loud: np.ndarray, min_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``[start, end)`` of the quiet runs of at least ``min_frames`` between two loud frames of ``loud``."""
    edges = np.diff(loud.astype(np.int8))
    quiet_starts, quiet_ends = np.flatnonzero(edges == -1) + 1, np.flatnonzero(edges == 1) + 1
    if len(quiet_ends) and len(quiet_starts) and quiet_ends[0] < quiet_starts[0]:
        quiet_ends = quiet_ends[1:]  # quiet at the start is an edge, not a pause
    quiet_starts = quiet_starts[: len(quiet_ends)]
    # a loud frame sounds for two hops: the pause begins one hop after the last loud frame
    long_enough = quiet_ends - quiet_starts - 1 >= min_frames
    return quiet_starts[long_enough] + 1, quiet_ends[long_enough]


def interior_pauses(
    regions: np.ndarray,
    energies_db: np.ndarray,
    min_pause: float,
    floor_window: float = 2.0,
    level: float = 0.2,
    min_depth_db: float = 15.0,
) -> np.ndarray:
    """Quiet stretches of at least ``min_pause`` seconds inside speech regions, as a ``(k, 2)`` array of seconds.

    Silero's hysteresis and the bridging of short pauses leave a speaker's half-second pauses inside a region.
    Quiet is judged against the local noise floor (10th percentile of the energy over ``floor_window``
    seconds): ``level`` of the way from it to the speech level, at least ``min_depth_db`` below the speech
    level (a steady voice fills a whole window) and never over 35 dB below it.
    """
    sound = _sound(regions, energies_db, floor_window, level, min_depth_db)
    if sound is None:
        return np.zeros((0, 2))
    index, loud = sound
    min_frames = int(np.ceil(min_pause / ENERGY_STEP - 1e-9))
    pauses = [((a + start) * ENERGY_STEP, (a + end) * ENERGY_STEP)
              for a, b in index for start, end in zip(*_quiet_runs(loud[a:b], min_frames))]
    return np.array(pauses, dtype=np.float64).reshape(-1, 2)


def fit_to_sound(
    segments: np.ndarray,
    energies_db: np.ndarray,
    min_pause: float,
    floor_window: float = 2.0,
    level: float = 0.2,
    min_depth_db: float = 15.0,
) -> list[tuple[int, float, float]]:
    """Each segment ``(start, end)`` (s) trimmed to its first and last sound and cut at the quiet stretches of
    ``min_pause`` or more inside it, quiet judged as in :func:`interior_pauses`; ``(segment index, start, end)``.

    A neural segmentation model draws speech as annotators do, running on past the last word and over short
    pauses; the energy places those edges to 10 ms. A segment without any sound is kept as it is.
    """
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    sound = _sound(segments, energies_db, floor_window, level, min_depth_db)
    if sound is None:
        return [(i, float(a), float(b)) for i, (a, b) in enumerate(segments)]
    index, loud = sound
    min_frames = int(np.ceil(min_pause / ENERGY_STEP - 1e-9))
    out = []
    for i, ((a, b), (start_s, end_s)) in enumerate(zip(index, segments)):
        inside = np.flatnonzero(loud[a:b])
        if not len(inside):
            out.append((i, float(start_s), float(end_s)))
            continue
        first, last = a + inside[0], a + inside[-1] + 2  # a frame is two hops long
        starts, ends = _quiet_runs(loud[first:last - 1], min_frames)
        bounds = np.sort(np.concatenate([[first], first + starts, first + ends, [last]])).reshape(-1, 2)
        out += [(i, max(float(p * ENERGY_STEP), float(start_s)), min(float(q * ENERGY_STEP), float(end_s)))
                for p, q in bounds]
    return out
