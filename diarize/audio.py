"""Audio input stage: decode a file, bytes or stream into float32 at the pipeline's sample rate.

Long recordings are decoded, downmixed and resampled block by block into one preallocated
output, so a file never exists in memory at its native rate and channel count.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import stat
import struct
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Union

import av
import numpy as np
import soundfile as sf
import soxr

from .config import AudioConfig
from .errors import (
    AudioError,
    AudioNotFoundError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    UnsupportedAudioError,
)

__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_DURATION",
    "MIN_SAMPLE_RATE",
    "Audio",
    "AudioInfo",
    "audio_info",
    "from_array",
    "load_audio",
]

MIN_DURATION = 0.1
"""Shortest audio accepted (seconds); anything shorter cannot hold a speaker turn."""
MAX_SAMPLE_RATE = 1_000_000
"""Highest sample rate accepted (Hz); a header declaring more is corrupt."""
MIN_SAMPLE_RATE = 4000
"""Lowest sample rate accepted (Hz): below it no speech band survives, and a header declaring 1 Hz turns a
96 KB file into 13 hours of "audio" to decode and diarize."""
MAX_CHANNELS = 64
"""Highest channel count accepted; a header declaring more is corrupt."""

AudioSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]

_RESAMPLE_QUALITY = "HQ"
_SLICE_FRAMES = 1 << 16  # blocks are downmixed and resampled in slices this long: small temporaries, warm caches
_MAX_BLOCK_SAMPLES = 1 << 26  # one decoded block never exceeds 256 MiB, whatever block_seconds says
_MAX_PREALLOC = 1 << 28  # a header is not trusted for more than 1 GiB of output up front
_UNKNOWN_LENGTH_SECONDS = 60.0  # initial output capacity when the header gives no length
_SF_UNKNOWN_FRAMES = 1 << 62  # libsndfile reports SF_COUNT_MAX when the length is unknown
_ESTIMATED_LENGTH_FORMATS = {"aac", "ac3", "amr", "dts", "eac3", "loas", "mp3"}  # FFmpeg guesses from bitrate
_DECODER_ERRORS = (av.error.FFmpegError, sf.SoundFileError, RuntimeError, ValueError, OSError)
_OPEN_ERRORS = (*_DECODER_ERRORS, TypeError)  # soundfile raises TypeError for inputs it cannot treat as a file
_AUDIO_MAGICS = (
    b"RIFF", b"RIFX", b"RF64", b"BW64", b"fLaC", b"OggS", b"ID3", b"FORM", b".snd",
    b"caff", b"\x1aE\xdf\xa3", b"#!AMR", b"MAC ", b"wvpk", b"NIST",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Audio:
    """Decoded audio: float32 samples of shape (channels, n), C-contiguous, at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int
    path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.samples, np.ndarray) or self.samples.ndim != 2 or self.samples.dtype != np.float32:
            raise ValueError("Audio.samples must be a float32 array of shape (channels, n)")
        if not self.samples.flags.c_contiguous:
            raise ValueError("Audio.samples must be C-contiguous")
        if self.sample_rate <= 0:
            raise ValueError(f"Audio.sample_rate must be positive, got {self.sample_rate}")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[1] / self.sample_rate

    @property
    def num_channels(self) -> int:
        """Number of channels (1 after the default mono downmix)."""
        return self.samples.shape[0]

    def mono(self) -> np.ndarray:
        """1-D float32 mean of the channels; a view, not a copy, when there is one channel."""
        if self.samples.shape[0] == 1:
            return self.samples[0]
        return self.samples.mean(axis=0, dtype=np.float32)

    def channel(self, index: int) -> np.ndarray:
        """1-D float32 view of one channel (negative indices count from the last)."""
        return self.samples[index]


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: duration (s), native rate and channels, short container and codec names."""

    duration: float
    sample_rate: int
    num_channels: int
    format: str
    codec: str | None


def load_audio(source: AudioSource, config: AudioConfig = AudioConfig(), mono: bool = True) -> Audio:
    """Decode ``source`` (path, bytes or binary file object) to ``config.sample_rate``, mono unless ``mono=False``.

    Raises an :class:`~diarize.errors.AudioError` subclass for anything unusable; warns and keeps what is
    there when a file is shorter than its header says. Over ``config.max_duration``: :class:`AudioTooLongError`.
    """
    inp = _resolve(source)
    declared = _inspect_riff(inp)
    decoder = _open_decoder(inp)
    try:
        _check_format(inp.name, decoder.sample_rate, decoder.channels)
        header_frames = decoder.frames
        if header_frames is not None and decoder.exact_length:
            _check_max_duration(inp.name, header_frames / decoder.sample_rate, config)
            if declared is None:
                declared = header_frames / decoder.sample_rate
        block = max(1, min(int(config.block_seconds * decoder.sample_rate), _MAX_BLOCK_SAMPLES // decoder.channels))
        samples, consumed = _assemble(
            inp.name, decoder.blocks(block), decoder.sample_rate, decoder.channels, header_frames, config, mono
        )
    finally:
        decoder.close()
    decoded = consumed / decoder.sample_rate
    if declared is not None and decoded < 0.99 * declared - 0.1:
        if consumed == 0:
            raise CorruptAudioError(
                f"{inp.name}: truncated: header declares {declared:.2f} s of audio but none is present"
            )
        warnings.warn(
            f"{inp.name}: truncated file: header declares {declared:.2f} s of audio but only {decoded:.2f} s "
            "could be decoded; using what is there",
            stacklevel=2,
        )
    _check_min_duration(inp.name, consumed, decoder.sample_rate)
    return Audio(samples, config.sample_rate, inp.path)


def audio_info(source: AudioSource) -> AudioInfo:
    """Read the header of ``source`` without decoding the audio (a file object is rewound afterwards)."""
    inp = _resolve(source)
    try:
        _inspect_riff(inp)
        decoder = _open_decoder(inp)
        try:
            _check_format(inp.name, decoder.sample_rate, decoder.channels)
            frames = decoder.frames if decoder.frames is not None else decoder.count_frames()
        except _DECODER_ERRORS as exc:
            raise CorruptAudioError(f"{inp.name}: cannot read the stream's length: {_reason(exc)}") from exc
        finally:
            decoder.close()
    finally:
        inp.rewind()
    return AudioInfo(frames / decoder.sample_rate, decoder.sample_rate, decoder.channels, decoder.format, decoder.codec)


def from_array(
    samples: np.ndarray, sample_rate: int, config: AudioConfig = AudioConfig(), mono: bool = True
) -> Audio:
    """Validate an in-memory signal of shape (n,) or (channels, n) and resample it like :func:`load_audio`.

    Integer PCM is scaled to [-1, 1). The result may share memory with ``samples`` when no conversion is needed.
    """
    name = "<array>"
    x = np.asarray(samples)
    if x.dtype.kind not in "fiu":
        raise UnsupportedAudioError(f"{name}: unsupported sample dtype {x.dtype}; expected float or integer PCM")
    if x.ndim == 1:
        x = x[np.newaxis]
    elif x.ndim != 2:
        raise CorruptAudioError(f"{name}: expected shape (n,) or (channels, n), got {x.shape}")
    whole = isinstance(sample_rate, numbers.Real) and not isinstance(sample_rate, bool)
    if not whole or not float(sample_rate).is_integer():
        raise CorruptAudioError(f"{name}: sample rate must be a whole number of Hz, got {sample_rate!r}")
    rate = int(sample_rate)
    channels, n = x.shape
    if channels > MAX_CHANNELS >= n:
        raise CorruptAudioError(
            f"{name}: shape {x.shape} means {channels} channels (at most {MAX_CHANNELS}); "
            "pass (channels, n), e.g. samples.T"
        )
    _check_format(name, rate, channels)
    _check_max_duration(name, n / rate, config)
    _check_min_duration(name, n, rate)
    if rate == config.sample_rate and x.dtype == np.float32 and (channels == 1 or not mono):
        _check_finite(name, x.T, 0, rate)
        return Audio(np.ascontiguousarray(x), rate)
    step = max(1, min(int(config.block_seconds * rate), _MAX_BLOCK_SAMPLES // channels))
    blocks = (_pcm_to_float32(x[:, i : i + step].T) for i in range(0, n, step))
    out, _ = _assemble(name, blocks, rate, channels, n, config, mono)
    return Audio(out, config.sample_rate)


@dataclass
class _Input:
    """A resolved source: display name, path (if any), what decoders open, size and first bytes."""

    name: str
    path: str | None
    target: str | BinaryIO
    size: int
    head: bytes

    def rewind(self) -> None:
        """Put a file object back at its start for the next reader."""
        if not isinstance(self.target, str):
            self.target.seek(0)


def _resolve(source: AudioSource) -> _Input:
    """Turn a path, bytes or file object into an :class:`_Input`; missing or empty sources fail here."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(source)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise AudioNotFoundError(f"{path}: no such file") from None
        except OSError as exc:
            raise AudioError(f"{path}: cannot access file: {exc.strerror}") from exc
        if stat.S_ISDIR(mode):
            raise AudioNotFoundError(f"{path}: is a directory, not an audio file")
        if not stat.S_ISREG(mode):
            raise AudioNotFoundError(f"{path}: not a regular file")
        try:
            with open(path, "rb") as f:
                head = f.read(16)
                size = f.seek(0, io.SEEK_END)
        except OSError as exc:
            raise AudioError(f"{path}: cannot read file: {exc.strerror}") from exc
        inp = _Input(path, path, path, size, head)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        buffer = io.BytesIO(source)
        size = buffer.seek(0, io.SEEK_END)
        buffer.seek(0)
        inp = _Input(f"<{size}-byte buffer>", None, buffer, size, buffer.read(16))
    elif isinstance(source, io.TextIOBase):
        raise TypeError("audio file objects must be opened in binary mode ('rb')")
    elif hasattr(source, "read"):
        file_name = getattr(source, "name", None)
        path = file_name if isinstance(file_name, str) else None
        name = path or "<stream>"
        try:
            stream = source if _at_start(source) else io.BytesIO(source.read())
            size = stream.seek(0, io.SEEK_END)
            stream.seek(0)
            head = stream.read(16)
        except (OSError, ValueError) as exc:
            raise AudioError(f"{name}: cannot read stream: {_reason(exc)}") from exc
        if not isinstance(head, bytes):
            raise TypeError("audio file objects must return bytes from read()")
        inp = _Input(name, path, stream, size, head)
    else:
        raise TypeError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")
    if inp.size == 0:
        raise EmptyAudioError(f"{inp.name}: file is empty (0 bytes)")
    inp.rewind()
    return inp


def _at_start(stream: BinaryIO) -> bool:
    """Whether a file object can be handed to decoders as is: seekable and at position 0."""
    try:
        return bool(stream.seekable()) and stream.tell() == 0
    except (AttributeError, OSError, ValueError):
        return False


def _inspect_riff(inp: _Input) -> float | None:
    """Check a RIFF/WAVE header's rate and channels, and return its data chunk's declared duration (s).

    Decoders reject absurd WAV headers with vague messages (or accept them); this names the problem.
    """
    if inp.head[:4] not in (b"RIFF", b"RIFX") or inp.head[8:12] != b"WAVE":
        return None
    order = "<" if inp.head[:4] == b"RIFF" else ">"
    byte_rate = None
    f = open(inp.target, "rb") if isinstance(inp.target, str) else inp.target
    try:
        pos = 12
        for _ in range(256):
            f.seek(pos)
            header = f.read(8)
            if len(header) < 8:
                return None
            chunk_id, (size,) = header[:4], struct.unpack(order + "I", header[4:])
            if chunk_id == b"fmt ":
                body = f.read(16)
                if len(body) < 16:
                    return None
                _, channels, rate, _, block_align, _ = struct.unpack(order + "HHIIHH", body)
                _check_format(inp.name, rate, channels)
                byte_rate = rate * block_align
            elif chunk_id == b"data":
                if not byte_rate or size in (0xFFFFFFFF, 0x7FFFFFFF):
                    return None
                return size / byte_rate
            pos += 8 + size + (size & 1)
        return None
    except OSError as exc:
        raise AudioError(f"{inp.name}: cannot read file: {_reason(exc)}") from exc
    finally:
        if isinstance(inp.target, str):
            f.close()
        else:
            f.seek(0)


def _check_format(name: str, sample_rate: int, channels: int) -> None:
    """Refuse absurd sample rates and channel counts, whichever header or array declares them."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise CorruptAudioError(
            f"{name}: invalid sample rate {sample_rate} Hz (expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)")
    if not 0 < channels <= MAX_CHANNELS:
        raise CorruptAudioError(f"{name}: invalid channel count {channels} (expected 1 to {MAX_CHANNELS})")


def _check_max_duration(name: str, seconds: float, config: AudioConfig) -> None:
    """Refuse audio longer than ``config.max_duration``."""
    if config.max_duration is not None and seconds > config.max_duration:
        raise AudioTooLongError(f"{name}: {seconds:.1f} s of audio exceeds max_duration={config.max_duration:g} s")


def _check_min_duration(name: str, frames: int, sample_rate: int) -> None:
    """Refuse audio with no samples or shorter than :data:`MIN_DURATION`."""
    if frames == 0:
        raise EmptyAudioError(f"{name}: contains no audio samples")
    if frames / sample_rate < MIN_DURATION - 1e-9:
        raise EmptyAudioError(
            f"{name}: only {frames / sample_rate:.3f} s of audio (at least {MIN_DURATION:g} s is needed)"
        )


def _check_finite(name: str, x: np.ndarray, offset: int, sample_rate: int) -> None:
    """Refuse NaN/Inf samples; one float64 sum detects them without a full-size boolean mask."""
    if math.isfinite(x.sum(dtype=np.float64)):
        return
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    where = (offset + int(bad[0])) / sample_rate if bad.size else offset / sample_rate
    raise CorruptAudioError(f"{name}: NaN or infinite sample value at {where:.2f} s")


def _reason(exc: BaseException) -> str:
    """A decoder exception's own message on one line."""
    text = getattr(exc, "error_string", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _decode_error(name: str, frames: int, sample_rate: int, exc: BaseException) -> CorruptAudioError:
    """The error for a stream that breaks after ``frames`` good frames."""
    return CorruptAudioError(f"{name}: decoding failed after {frames / sample_rate:.2f} s of audio: {_reason(exc)}")


def _looks_like_audio(head: bytes) -> bool:
    """Whether the first bytes are an audio container's signature (so a failure means damage, not a wrong type)."""
    if head.startswith(_AUDIO_MAGICS) or head[4:8] == b"ftyp":
        return True
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


_NATIVE_STDERR = threading.Lock()


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what native decoders print on the process's stderr (libsndfile's mpg123 writes "error:
    part2_3_length ..." and "Note: Illegal Audio-MPEG-Header" lines for files it then decodes, or refuses with
    an error of its own). File descriptor 2 points to /dev/null for the call; a lock keeps threads from nesting."""
    with _NATIVE_STDERR:
        try:
            sys.stderr.flush()
            saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to silence
            yield
            return
        os.dup2(null, 2)
        os.close(null)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _open_decoder(inp: _Input) -> _SoundFileDecoder | _PyAVDecoder:
    """Open ``inp`` with libsndfile, else PyAV; classify the failure when neither can."""
    try:
        with _quiet_native_stderr():
            sound_file = sf.SoundFile(inp.target)
    except _OPEN_ERRORS as exc:
        sf_error: BaseException | None = exc
    else:
        if sound_file.frames < _SF_UNKNOWN_FRAMES:
            return _SoundFileDecoder(inp.name, sound_file)
        sound_file.close()  # libsndfile cannot read streams of unknown length reliably
        sf_error = None
    inp.rewind()
    try:
        container = av.open(inp.target, metadata_errors="replace")
    except _OPEN_ERRORS as exc:
        reasons = "; ".join(
            f"{lib}: {_reason(err)}" for lib, err in (("libsndfile", sf_error), ("ffmpeg", exc)) if err is not None
        )
        if _looks_like_audio(inp.head):
            raise CorruptAudioError(f"{inp.name}: damaged or truncated audio file ({reasons})") from exc
        # libsndfile's message for an unknown format is "File does not exist or is not a regular file": misleading
        raise UnsupportedAudioError(f"{inp.name}: not an audio file, or a format neither libsndfile nor FFmpeg "
                                    f"decodes (ffmpeg: {_reason(exc)})") from exc
    try:
        stream = container.streams.best("audio")
        kind = _container_name(container)
        if stream is None:
            raise UnsupportedAudioError(f"{inp.name}: no audio stream in this {kind} file")
        if stream.codec_context is None:
            raise UnsupportedAudioError(f"{inp.name}: no decoder for the audio codec of this {kind} file")
        return _PyAVDecoder(inp.name, container, stream)
    except BaseException:
        container.close()
        raise


class _SoundFileDecoder:
    """Block reader over libsndfile (WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF, ...)."""

    def __init__(self, name: str, sound_file: sf.SoundFile) -> None:
        self.name = name
        self._file = sound_file
        self.sample_rate = sound_file.samplerate
        self.channels = sound_file.channels
        self.frames: int | None = sound_file.frames  # always known: unknown lengths go to PyAV
        self.exact_length = True
        self.format = sound_file.format.lower()
        subtype = sound_file.subtype
        codecs = {"MPEG_LAYER_I": "mp1", "MPEG_LAYER_II": "mp2", "MPEG_LAYER_III": "mp3"}
        self.codec = "flac" if self.format == "flac" else codecs.get(subtype, subtype.lower())

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """Yield (k, channels) float32 blocks; the same buffer is reused, so consume each before the next."""
        buffer = np.empty((block_frames, self.channels), np.float32)
        position = 0
        while True:
            filled = 0
            while filled < block_frames:  # read in slices so that a failure is located to within a slice
                piece = buffer[filled : filled + min(_SLICE_FRAMES, block_frames - filled)]
                try:
                    with _quiet_native_stderr():
                        got = len(self._file.read(out=piece))
                except _DECODER_ERRORS as exc:
                    raise _decode_error(self.name, position + filled, self.sample_rate, exc) from exc
                if not got:
                    break
                filled += got
            if filled:
                yield buffer[:filled]
                position += filled
            if filled < block_frames:
                return

    def close(self) -> None:
        self._file.close()


class _PyAVDecoder:
    """Block reader over FFmpeg through PyAV, for everything libsndfile cannot open (M4A/AAC, WebM, ...)."""

    def __init__(self, name: str, container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> None:
        self.name = name
        self._container = container
        self._stream = stream
        context = stream.codec_context
        self.sample_rate = context.sample_rate
        self.channels = context.channels
        if stream.duration is not None and stream.time_base is not None:
            seconds: float | None = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            seconds = None
        self.frames = round(seconds * self.sample_rate) if seconds and seconds > 0 else None
        self.format = _container_name(container)
        self.exact_length = self.format not in _ESTIMATED_LENGTH_FORMATS
        self.codec = context.name

    def blocks(self, block_frames: int) -> Iterator[np.ndarray]:
        """Yield (k, channels) float32 blocks; the same buffer is reused, so consume each before the next."""
        buffer = np.empty((block_frames, self.channels), np.float32)
        filled = position = 0
        try:
            for frame in self._frames():
                start = 0
                while start < len(frame):
                    take = min(block_frames - filled, len(frame) - start)
                    buffer[filled : filled + take] = frame[start : start + take]
                    filled += take
                    start += take
                    if filled == block_frames:
                        yield buffer
                        filled = 0
                position += len(frame)
        except _DECODER_ERRORS as exc:
            raise _decode_error(self.name, position, self.sample_rate, exc) from exc
        if filled:
            yield buffer[:filled]

    def _frames(self) -> Iterator[np.ndarray]:
        """Decoded frames as (n, channels) float32, converted to the stream's first rate and channel count.

        A rate change mid-stream goes through FFmpeg's resampler; a channel change is mixed to mono and spread.
        """
        converter, converter_key = None, None
        for packet in self._container.demux(self._stream):
            for frame in packet.decode():
                key = (frame.sample_rate, frame.layout.name)
                if converter is not None and key != converter_key:
                    yield from self._convert(converter, None)
                    converter = None
                if frame.sample_rate == self.sample_rate:
                    yield self._fit_channels(_frame_to_float32(frame))
                    continue
                if converter is None:
                    converter = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=self.sample_rate)
                    converter_key = key
                yield from self._convert(converter, frame)
        if converter is not None:
            yield from self._convert(converter, None)

    def _convert(self, converter: av.AudioResampler, frame: av.AudioFrame | None) -> Iterator[np.ndarray]:
        for converted in converter.resample(frame):
            yield self._fit_channels(_frame_to_float32(converted))

    def _fit_channels(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1] == self.channels:
            return x
        return np.repeat(_downmix(x)[:, np.newaxis], self.channels, axis=1)

    def count_frames(self) -> int:
        """Length from the packets' timestamps, for streams whose header has none (no decoding)."""
        end = 0.0
        for packet in self._container.demux(self._stream):
            if packet.pts is not None and packet.time_base is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        return round(end * self.sample_rate)

    def close(self) -> None:
        self._container.close()


def _container_name(container: av.container.InputContainer) -> str:
    """FFmpeg's short demuxer name ("mov,mp4,m4a,..." becomes "mp4")."""
    name = container.format.name.split(",")[0]
    return "mp4" if name == "mov" else name


def _frame_to_float32(frame: av.AudioFrame) -> np.ndarray:
    """One PyAV frame as (n, channels) float32, whatever its sample format and planarity."""
    data = frame.to_ndarray()
    data = data.T if frame.format.is_planar else data.reshape(-1, frame.layout.nb_channels)
    return _pcm_to_float32(data)


def _pcm_to_float32(x: np.ndarray) -> np.ndarray:
    """Float samples as float32; signed/unsigned integer PCM scaled to [-1, 1)."""
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=False)
    half_range = 2.0 ** (x.dtype.itemsize * 8 - 1)
    out = x.astype(np.float32)
    if x.dtype.kind == "u":
        out -= np.float32(half_range)
    out *= np.float32(1.0 / half_range)
    return out


def _downmix(block: np.ndarray) -> np.ndarray:
    """Mean of the channels of a (k, channels) block; a view when there is one channel."""
    channels = block.shape[1]
    if channels == 1:
        return block[:, 0]
    mono = block[:, 0].copy()
    for c in range(1, channels):
        mono += block[:, c]
    mono *= np.float32(1.0 / channels)
    return mono


def _assemble(
    name: str,
    blocks: Iterator[np.ndarray],
    in_rate: int,
    channels: int,
    frames_hint: int | None,
    config: AudioConfig,
    mono: bool,
) -> tuple[np.ndarray, int]:
    """Check, downmix and stream-resample (k, channels) blocks, slice by slice, into one (out_channels, n) array.

    Returns the array and the number of input frames consumed. Decoder failures become CorruptAudioError.
    """
    out_rate = config.sample_rate
    out_channels = 1 if mono else channels
    if frames_hint:
        capacity = math.ceil(frames_hint * out_rate / in_rate * 1.01) + out_rate
    else:
        capacity = math.ceil(_UNKNOWN_LENGTH_SECONDS * out_rate)
    if config.max_duration is not None:
        capacity = min(capacity, math.ceil(config.max_duration * out_rate) + out_rate)
    sink = _Sink(out_channels, min(capacity, _MAX_PREALLOC // out_channels))
    resampler = None
    if in_rate != out_rate:
        resampler = soxr.ResampleStream(in_rate, out_rate, out_channels, dtype="float32", quality=_RESAMPLE_QUALITY)
    consumed = 0
    try:
        for block in blocks:
            for start in range(0, len(block), _SLICE_FRAMES):
                piece = block[start : start + _SLICE_FRAMES]
                x = _downmix(piece) if mono else piece
                if out_channels == 1:
                    x = x.reshape(-1)
                _check_finite(name, x, consumed, in_rate)
                consumed += len(piece)
                sink.write(resampler.resample_chunk(np.ascontiguousarray(x)) if resampler else x)
            _check_max_duration(name, consumed / in_rate, config)
        if resampler is not None:
            tail_shape = (0,) if out_channels == 1 else (0, out_channels)
            sink.write(resampler.resample_chunk(np.zeros(tail_shape, np.float32), last=True))
    except _DECODER_ERRORS as exc:
        raise _decode_error(name, consumed, in_rate, exc) from exc
    return sink.finish(), consumed


class _Sink:
    """Output of shape (channels, capacity), filled block by block and grown or trimmed inside one allocation."""

    def __init__(self, channels: int, capacity: int) -> None:
        self.channels = channels
        self.capacity = max(1, capacity)
        self.length = 0
        self._flat = np.empty(channels * self.capacity, np.float32)

    def write(self, y: np.ndarray) -> None:
        """Append (k,) or (k, channels) samples."""
        k = len(y)
        if self.length + k > self.capacity:
            self._set_capacity(max(self.length + k, self.capacity + self.capacity // 2))
        rows = self._flat.reshape(self.channels, self.capacity)
        rows[:, self.length : self.length + k] = y.T if y.ndim == 2 else y
        self.length += k

    def finish(self) -> np.ndarray:
        """The filled (channels, length) C-contiguous array, unused capacity released."""
        if self.length < self.capacity:
            self._set_capacity(self.length)
        return self._flat.reshape(self.channels, self.length)

    def _set_capacity(self, capacity: int) -> None:
        """Resize in place (realloc) and move channel rows to their new stride, never holding two copies."""
        old = self.capacity
        if capacity > old:
            self._flat.resize(self.channels * capacity, refcheck=False)
            for c in range(self.channels - 1, 0, -1):
                _move(self._flat, c * capacity, c * old, self.length)
        else:
            for c in range(1, self.channels):
                _move(self._flat, c * capacity, c * old, self.length)
            self._flat.resize(self.channels * capacity, refcheck=False)
        self.capacity = capacity


def _move(flat: np.ndarray, dst: int, src: int, n: int, chunk: int = 1 << 20) -> None:
    """Copy ``flat[src:src+n]`` to ``flat[dst:dst+n]`` in chunks, in the order that never overwrites unread data."""
    starts = range(0, n, chunk)
    for i in starts if dst < src else reversed(starts):
        m = min(chunk, n - i)
        flat[dst + i : dst + i + m] = flat[src + i : src + i + m]
