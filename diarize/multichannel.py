"""Multichannel diarization: every channel diarized on its own (a call with one party per channel).

Crosstalk bleed, the other party heard faintly in a channel, is gated out frame by frame before a channel
is diarized (so it never becomes a speaker of its own) and any utterance still dominated by another
channel is dropped afterwards (so nothing is reported twice). Channels that carry one identical signal
are diarized once, as mono. Levels are compared as recorded, so a party whose line is much quieter than the
other's (by more than ``bleed_db`` less the bleed's own attenuation) can leak into the louder channel.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d

from .audio import Audio, load_audio
from .config import MultichannelConfig
from .pipeline import DiarizationPipeline, ProgressCallback
from .postprocess import speaker_label
from .result import UNKNOWN, Result, Speaker, Utterance

_SILENT_DB = -120.0
_BLOCK_FRAMES = 1 << 14  # level and correlation are computed this many frames at a time


def frame_levels(samples: np.ndarray, sample_rate: int, frame: float) -> np.ndarray:
    """Short-term level in dB of each channel, shape (channels, frames), for ``samples`` of shape (channels, n)."""
    hop = max(1, int(round(frame * sample_rate)))
    n = samples.shape[1] // hop
    power = np.empty((samples.shape[0], n), np.float64)
    for c, x in enumerate(samples):
        frames = x[: n * hop].reshape(n, hop)
        for a in range(0, n, _BLOCK_FRAMES):  # in blocks: no float64 copy of a long channel
            block = frames[a:a + _BLOCK_FRAMES].astype(np.float64)
            power[c, a:a + _BLOCK_FRAMES] = np.einsum("ij,ij->i", block, block) / hop
    return 10 * np.log10(power + 10 ** (_SILENT_DB / 10))


def identical_channels(samples: np.ndarray, min_correlation: float = 0.999) -> bool:
    """Whether every channel is (a scaled copy of) the first one: a stereo file that is really mono."""
    step = _BLOCK_FRAMES * 320
    for x in samples[1:]:
        first_energy = other_energy = cross = 0.0
        for a in range(0, samples.shape[1], step):
            u = samples[0, a:a + step].astype(np.float64)
            v = x[a:a + step].astype(np.float64)
            first_energy += float(u @ u)
            other_energy += float(v @ v)
            cross += float(u @ v)
        if first_energy == 0.0 or other_energy == 0.0:
            if first_energy != other_energy:
                return False
            continue
        if cross / np.sqrt(first_energy * other_energy) < min_correlation:
            return False
    return True


def bleed_frames(levels: np.ndarray, bleed_db: float, spread: int = 1) -> np.ndarray:
    """Frames of each channel that are bleed: some other channel is ``bleed_db`` louder there (within ±``spread``)."""
    channels = levels.shape[0]
    mask = np.zeros(levels.shape, bool)
    if channels < 2:
        return mask
    peak = maximum_filter1d(levels, size=2 * spread + 1, axis=1, mode="nearest") if spread else levels
    for c in range(channels):
        loudest_other = np.max(np.delete(peak, c, axis=0), axis=0)
        mask[c] = levels[c] < loudest_other - bleed_db
    return mask


def gate(samples: np.ndarray, mask: np.ndarray, hop: int) -> np.ndarray:
    """A copy of one channel with its masked frames silenced."""
    out = samples.copy()
    n = min(len(mask), len(out) // hop)
    frames = out[: n * hop].reshape(n, hop)
    frames[mask[:n]] = 0.0
    return out


def is_bleed(levels: np.ndarray, channel: int, first: int, last: int, bleed_db: float) -> bool:
    """Whether frames [first, last) of ``channel`` are, in total power, ``bleed_db`` below another channel."""
    span = levels[:, first:max(last, first + 1)]
    if span.shape[1] == 0:
        return False
    power = 10 * np.log10(np.mean(10 ** (span / 10), axis=1))
    others = np.delete(power, channel)
    return bool(len(others)) and bool(power[channel] < others.max() - bleed_db)


class MultichannelDiarizer:
    """Diarize each channel of a recording with one :class:`DiarizationPipeline`; speakers ``1A``, ``1B``, ``2A``…

    Speaker-count hints apply to each channel, as hosted APIs do. Utterances and speakers carry their
    channel (1-based, like the labels). A mono file, or one whose channels are identical, is diarized once
    as mono (plain labels, no channel).
    """

    def __init__(self, pipeline: DiarizationPipeline):
        self.pipeline = pipeline
        self.config: MultichannelConfig = pipeline.config.multichannel

    def __call__(
        self,
        audio: Audio | str | os.PathLike | bytes,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> Result:
        report = progress or (lambda stage, fraction: None)
        if not isinstance(audio, Audio):
            audio = load_audio(audio, self.pipeline.config.audio, mono=False)
        channels = audio.num_channels
        if channels == 1 or identical_channels(audio.samples, self.config.identical_correlation):
            result = self.pipeline(audio, num_speakers, min_speakers, max_speakers, progress)
            mode = "mono" if channels == 1 else "identical channels, diarized as mono"
            return _annotated(result, {"channels": channels, "mode": mode, "bleed_utterances_dropped": 0})
        hop = max(1, int(round(self.config.frame * audio.sample_rate)))
        levels = frame_levels(audio.samples, audio.sample_rate, self.config.frame)
        spread = int(round(self.config.bleed_spread / self.config.frame))
        mask = bleed_frames(levels, self.config.bleed_db, spread)
        utterances: list[Utterance] = []
        speakers: list[Speaker] = []
        dropped = 0
        config: dict[str, Any] = {}
        notes: list[str] = []
        for c in range(channels):
            gated = gate(audio.channel(c), mask[c], hop)
            one = Audio(gated[np.newaxis], audio.sample_rate, audio.path)
            part = self.pipeline(
                one, num_speakers, min_speakers, max_speakers,
                progress=lambda stage, f, c=c: report(f"channel {c + 1}: {stage}", (c + f) / channels),
            )
            config = part.config
            notes += [f"channel {c + 1}: {note}" for note in part.warnings]
            kept = [u for u in part.utterances if not is_bleed(
                levels, c, int(u.start / self.config.frame), int(np.ceil(u.end / self.config.frame)),
                self.config.bleed_db)]
            dropped += len(part.utterances) - len(kept)
            u_list, s_list = _relabel(kept, part.speakers, c + 1)
            utterances += u_list
            speakers += s_list
        utterances.sort(key=lambda u: (u.start, u.channel))
        report("done", 1.0)
        result = Result(utterances, speakers, audio.duration, self.pipeline.embedding_backend.model_id, config,
                        part.uri, warnings=notes)
        return _annotated(result, {"channels": channels, "mode": "per channel", "bleed_utterances_dropped": dropped})


def _relabel(
    utterances: list[Utterance], speakers: list[Speaker], channel: int
) -> tuple[list[Utterance], list[Speaker]]:
    """Channel-prefixed labels (``2A``…) in order of first appearance among the kept utterances; empty speakers go."""
    names: dict[str, str] = {}
    for u in utterances:
        if u.speaker != UNKNOWN and u.speaker not in names:
            names[u.speaker] = f"{channel}{speaker_label(len(names))}"
    out = [dataclasses.replace(u, speaker=names.get(u.speaker, u.speaker), channel=channel) for u in utterances]
    by_label = {s.label: s for s in speakers}
    kept = []
    for old, new in names.items():
        mine = [u for u in out if u.speaker == new]
        kept.append(dataclasses.replace(
            by_label[old], label=new, talk_time=sum(u.duration for u in mine), utterance_count=len(mine),
            channel=channel))
    return out, kept


def _annotated(result: Result, facts: dict[str, Any]) -> Result:
    """``result`` with how its channels were treated recorded under ``config["multichannel"]``."""
    config = dict(result.config)
    config["multichannel"] = {**config.get("multichannel", {}), **facts}
    return dataclasses.replace(result, config=config)
