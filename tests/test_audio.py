"""Tests of the audio input stage on synthetic files written into tmp_path, plus one real recording."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from diarize import audio as audio_module
from diarize.audio import MIN_DURATION, MIN_SAMPLE_RATE, Audio, audio_info, from_array, load_audio
from diarize.config import AudioConfig
from diarize.errors import (
    AudioError,
    AudioNotFoundError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    UnsupportedAudioError,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stereo(seconds: float, rate: int) -> np.ndarray:
    """Two different tones, shape (2, n): 440 Hz left, 660 Hz right."""
    return np.stack([tone(440, seconds, rate, 0.5), tone(660, seconds, rate, 0.3)])


def expected(x: np.ndarray, rate: int, target: int = 16000) -> np.ndarray:
    """One-shot soxr reference of a (channels, n) signal."""
    return soxr.resample(x.T, rate, target, quality="HQ").T if rate != target else x


def peak_hz(x: np.ndarray, rate: int) -> float:
    """Frequency of the strongest FFT bin."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def write_pyav(path: Path, x: np.ndarray, rate: int, container: str, codec: str, codec_rate: int | None = None) -> Path:
    """Encode a (channels, n) float32 signal with PyAV (M4A/AAC, Opus, WebM)."""
    layout = "mono" if x.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=codec_rate or rate, layout=layout)
        for i in range(0, x.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + 1024]), format="fltp", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def wav_bytes(
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    tag: int = 1,
    data: bytes | None = None,
    declared: int | None = None,
) -> bytes:
    """A RIFF/WAVE file written byte by byte, so its header can lie."""
    if data is None:
        data = (tone(440, 1.0, rate if 0 < rate <= 96000 else 16000) * 20000).astype("<i2").tobytes()
    block_align = (channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * block_align) & 0xFFFFFFFF, block_align, bits)
    size = len(data) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def wav_bytes_wide_channels(channels: int) -> bytes:
    """A WAV whose fmt chunk packs the channel count as 32 bits (the real field is 16), shifting every later field."""
    fmt = struct.pack("<HIIIHH", 1, channels, 16000, 32000, 2, 16)
    data = b"\0\1" * 16000
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def au_bytes(rate: int = 16000, channels: int = 1) -> bytes:
    """A Sun .au file (32-bit channel field) with 16-bit PCM."""
    data = (tone(440, 0.5, 16000) * 20000).astype(">i2").tobytes()
    return b".snd" + struct.pack(">IIIII", 24, len(data), 3, rate, channels) + data


def noise_bytes(seed: int) -> bytes:
    """Random bytes that start with no container signature (values below 0xC8, so no MPEG sync)."""
    return bytes(np.random.default_rng(seed).integers(0, 200, 30000, dtype=np.uint8))


def assert_names(exc_info: pytest.ExceptionInfo, name: str) -> None:
    """The message names the file and fits on one line."""
    message = str(exc_info.value)
    assert name in message
    assert "\n" not in message


# --- round trips -------------------------------------------------------------------------------------------

LOSSLESS = [
    ("WAV", "PCM_16", 2e-4),
    ("WAV", "PCM_24", 1e-5),
    ("WAV", "PCM_32", 1e-5),
    ("WAV", "FLOAT", 1e-5),
    ("WAV", "DOUBLE", 1e-5),
    ("WAV", "PCM_U8", 2e-2),
    ("FLAC", "PCM_16", 2e-4),
    ("FLAC", "PCM_24", 1e-5),
]


@pytest.mark.parametrize(("container", "subtype", "tolerance"), LOSSLESS)
def test_lossless_round_trip_matches_reference_resampling(tmp_path, container, subtype, tolerance):
    x = stereo(1.0, 44100)
    path = tmp_path / f"x_{subtype}.{container.lower()}"
    sf.write(path, x.T, 44100, format=container, subtype=subtype)
    result = load_audio(path)
    assert result.sample_rate == 16000
    assert result.samples.dtype == np.float32 and result.samples.flags.c_contiguous
    assert result.samples.shape == (1, 16000)
    assert result.path == str(path)
    reference = expected(x.mean(axis=0, keepdims=True), 44100)
    np.testing.assert_allclose(result.samples, reference, atol=tolerance)


def test_wav_at_target_rate_is_sample_exact(tmp_path):
    x = tone(440, 1.0, 16000)
    path = tmp_path / "x.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path).samples[0], x)


LOSSY = [
    ("ogg", "soundfile", "OGG", "VORBIS", 44100),
    ("mp3", "soundfile", "MP3", "MPEG_LAYER_III", 44100),
    ("m4a", "pyav", "mp4", "aac", 44100),
    ("opus", "pyav", "ogg", "libopus", 48000),
    ("webm", "pyav", "webm", "libopus", 48000),
]


@pytest.mark.parametrize(("ext", "writer", "container", "codec", "rate"), LOSSY)
def test_lossy_round_trip_keeps_duration_pitch_and_level(tmp_path, ext, writer, container, codec, rate):
    if writer == "soundfile" and container not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {container}")
    x = stereo(2.0, rate)
    path = tmp_path / f"x.{ext}"
    if writer == "soundfile":
        sf.write(path, x.T, rate, format=container, subtype=codec)
    else:
        write_pyav(path, x, rate, container, codec)
    result = load_audio(path, mono=False)
    assert result.sample_rate == 16000 and result.num_channels == 2
    assert abs(result.duration - 2.0) < 0.1
    middle = slice(4000, 28000)
    assert abs(peak_hz(result.channel(0)[middle], 16000) - 440) <= 2
    assert abs(peak_hz(result.channel(1)[middle], 16000) - 660) <= 2
    assert rms(result.channel(0)[middle]) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    assert rms(result.channel(1)[middle]) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


def test_audio_info_reads_headers(tmp_path):
    sf.write(tmp_path / "a.flac", stereo(1.5, 44100).T, 44100, subtype="PCM_24")
    write_pyav(tmp_path / "b.m4a", stereo(1.0, 22050), 22050, "mp4", "aac")
    info = audio_info(tmp_path / "a.flac")
    assert (info.duration, info.sample_rate, info.num_channels, info.format, info.codec) == (
        1.5, 44100, 2, "flac", "flac"
    )
    info = audio_info(tmp_path / "b.m4a")
    assert (info.sample_rate, info.num_channels, info.format, info.codec) == (22050, 2, "mp4", "aac")
    assert abs(info.duration - 1.0) < 0.1


# --- resampling, channels, blocks ----------------------------------------------------------------------------


def test_resampled_sine_keeps_frequency_amplitude_and_length(tmp_path):
    path = tmp_path / "sine.wav"
    sf.write(path, tone(1000, 2.0, 44100, amplitude=0.5), 44100, subtype="FLOAT")
    result = load_audio(path)
    assert result.samples.shape == (1, 32000)
    x = result.mono()[1600:-1600]
    assert abs(peak_hz(x, 16000) - 1000) <= 1
    assert np.max(np.abs(x)) == pytest.approx(0.5, rel=0.01)
    assert rms(x) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_mono_downmix_is_channel_mean_and_mono_false_keeps_channels(tmp_path):
    x = stereo(1.0, 48000)
    path = tmp_path / "st.wav"
    sf.write(path, x.T, 48000, subtype="FLOAT")
    mono, both = load_audio(path), load_audio(path, mono=False)
    assert mono.num_channels == 1 and both.num_channels == 2
    reference = expected(x, 48000)
    np.testing.assert_allclose(both.samples, reference, atol=1e-5)
    np.testing.assert_allclose(mono.mono(), reference.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(both.mono(), mono.mono(), atol=1e-6)


def test_opposite_channels_downmix_to_silence(tmp_path):
    x = tone(300, 1.0, 16000)
    path = tmp_path / "opposite.wav"
    sf.write(path, np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    assert np.max(np.abs(load_audio(path).samples)) < 1e-7
    assert np.max(np.abs(load_audio(path, mono=False).channel(1) + x)) < 1e-7


@pytest.mark.parametrize("ext", ["flac", "m4a"])
@pytest.mark.parametrize("mono", [True, False])
def test_block_decoding_equals_one_shot(tmp_path, ext, mono):
    x = np.concatenate([stereo(4.0, 44100), stereo(4.0, 44100)[:, ::-1]], axis=1) * np.float32(0.9)
    path = tmp_path / f"long.{ext}"
    if ext == "flac":
        sf.write(path, x.T, 44100, subtype="PCM_24")
    else:
        write_pyav(path, x, 44100, "mp4", "aac")
    small = load_audio(path, AudioConfig(block_seconds=0.7), mono=mono)
    whole = load_audio(path, AudioConfig(block_seconds=600), mono=mono)
    assert small.samples.shape == whole.samples.shape
    assert abs(whole.duration - 8.0) < 0.1
    np.testing.assert_allclose(small.samples, whole.samples, atol=1e-6)


def test_output_grows_when_header_gives_no_length(tmp_path, monkeypatch):
    x = stereo(3.0, 44100)
    buffer = io.BytesIO()
    sf.write(buffer, x.T, 44100, format="FLAC", subtype="PCM_24")
    known = bytearray(buffer.getvalue())
    unknown = bytearray(known)
    fields = int.from_bytes(unknown[18:26], "big") & ~((1 << 36) - 1)  # STREAMINFO total samples := 0
    unknown[18:26] = fields.to_bytes(8, "big")
    monkeypatch.setattr(audio_module, "_UNKNOWN_LENGTH_SECONDS", 0.2)
    grown = load_audio(bytes(unknown), AudioConfig(block_seconds=0.5), mono=False)
    reference = load_audio(bytes(known), mono=False)
    assert grown.samples.shape == reference.samples.shape == (2, 48000)
    np.testing.assert_allclose(grown.samples, reference.samples, atol=1e-6)
    assert audio_info(bytes(unknown)).duration == pytest.approx(3.0, abs=0.01)


def test_rate_and_channel_change_mid_stream_is_converted(tmp_path):
    first = write_pyav(tmp_path / "a.aac", tone(1000, 2.0, 44100)[None], 44100, "adts", "aac")
    second = write_pyav(tmp_path / "b.aac", np.stack([tone(1000, 2.0, 22050)] * 2), 22050, "adts", "aac")
    joined = tmp_path / "joined.aac"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    result = load_audio(joined)
    assert abs(result.duration - 4.0) < 0.2
    for part in (result.mono()[8000:24000], result.mono()[40000:56000]):
        assert abs(peak_hz(part, 16000) - 1000) <= 2
        assert rms(part) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)


def test_max_duration_refused_from_header_and_while_decoding(tmp_path):
    path = tmp_path / "three.flac"
    sf.write(path, tone(440, 3.0, 16000), 16000)
    config = AudioConfig(max_duration=2.0)
    with pytest.raises(AudioTooLongError) as exc_info:
        load_audio(path, config)
    assert_names(exc_info, "three.flac")
    stream_path = write_pyav(tmp_path / "three.webm", tone(440, 3.0, 48000)[None], 48000, "webm", "libopus")
    with pytest.raises(AudioTooLongError):
        load_audio(stream_path, AudioConfig(max_duration=2.0, block_seconds=0.5))
    assert load_audio(path, AudioConfig(max_duration=3.0)).duration == pytest.approx(3.0)


# --- sources ---------------------------------------------------------------------------------------------------


class _PipeLike(io.RawIOBase):
    """A non-seekable binary stream, like a socket or an upload pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("ext", ["flac", "m4a"])
def test_bytes_and_file_objects_decode_like_paths(tmp_path, ext):
    path = tmp_path / f"src.{ext}"
    if ext == "flac":
        sf.write(path, stereo(1.0, 44100).T, 44100)
    else:
        write_pyav(path, stereo(1.0, 44100), 44100, "mp4", "aac")
    reference = load_audio(path).samples
    data = path.read_bytes()
    with open(path, "rb") as f:
        from_file = load_audio(f)
    assert from_file.path == str(path)
    for result in (load_audio(data), load_audio(io.BytesIO(data)), load_audio(_PipeLike(data)), from_file):
        np.testing.assert_array_equal(result.samples, reference)
    with open(path, "rb") as f:
        assert audio_info(f).num_channels == 2
        assert f.tell() == 0
        assert load_audio(f).samples.shape == reference.shape


# --- content that is unusual but valid -------------------------------------------------------------------------


def test_silence_clipping_and_dc_offset_load_unchanged(tmp_path):
    cases = {
        "zeros": np.zeros(16000, np.float32),
        "clipped": np.clip(tone(200, 1.0, 16000, 3.0), -1.0, 1.0),
        "dc": tone(200, 1.0, 16000, 0.2) + np.float32(0.3),
    }
    for name, x in cases.items():
        sf.write(tmp_path / f"{name}.wav", x, 16000, subtype="FLOAT")
        np.testing.assert_array_equal(load_audio(tmp_path / f"{name}.wav").mono(), x)
    loud = tone(200, 1.0, 16000, 1.5)
    assert np.max(from_array(loud, 16000).samples) == pytest.approx(1.5, rel=1e-3)


def test_minimum_duration_boundary(tmp_path):
    sf.write(tmp_path / "ok.wav", tone(440, MIN_DURATION, 44100), 44100)
    assert load_audio(tmp_path / "ok.wav").duration == pytest.approx(MIN_DURATION, abs=1e-3)
    sf.write(tmp_path / "short.wav", tone(440, 0.05, 44100), 44100)
    with pytest.raises(EmptyAudioError) as exc_info:
        load_audio(tmp_path / "short.wav")
    assert_names(exc_info, "short.wav")


# --- bad inputs -----------------------------------------------------------------------------------------------


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(AudioNotFoundError) as exc_info:
        load_audio(tmp_path / "nowhere.wav")
    assert_names(exc_info, "nowhere.wav")
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(AudioNotFoundError) as exc_info:
        load_audio(tmp_path / "folder.wav")
    assert_names(exc_info, "folder.wav")
    with pytest.raises(AudioNotFoundError):
        audio_info(tmp_path / "nowhere.wav")


BAD_FILES = {
    "text.wav": (lambda: b"this is not audio, just text\n" * 40, UnsupportedAudioError),
    "noise.mp3": (lambda: noise_bytes(1), UnsupportedAudioError),
    "noise.m4a": (lambda: noise_bytes(2), UnsupportedAudioError),
    "codec.wav": (lambda: wav_bytes(tag=0x7777), UnsupportedAudioError),
    "zero_rate.wav": (lambda: wav_bytes(rate=0), CorruptAudioError),
    "huge_rate.wav": (lambda: wav_bytes(rate=2_000_000), CorruptAudioError),
    "zero_channels.wav": (lambda: wav_bytes(channels=0), CorruptAudioError),
    "many_channels.wav": (lambda: wav_bytes(channels=65535, data=b"\0" * 65535 * 4), CorruptAudioError),
    "billion_channels.wav": (lambda: wav_bytes_wide_channels(10**9), CorruptAudioError),
    "billion_channels.au": (lambda: au_bytes(channels=10**9), CorruptAudioError),
    "header_only.wav": (lambda: wav_bytes()[:36], CorruptAudioError),
    "no_data.wav": (lambda: wav_bytes(data=b"", declared=32000), CorruptAudioError),
    "empty.wav": (lambda: b"", EmptyAudioError),
    "no_samples.wav": (lambda: wav_bytes(data=b""), EmptyAudioError),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_the_right_error_naming_the_file(tmp_path, name):
    make, error = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(error) as exc_info:
        load_audio(path)
    assert_names(exc_info, name)
    with pytest.raises(error):
        load_audio(path.read_bytes())


def test_absurd_header_is_refused_by_audio_info_too(tmp_path):
    path = tmp_path / "huge_rate.wav"
    path.write_bytes(wav_bytes(rate=5_000_000))
    with pytest.raises(CorruptAudioError, match="5000000 Hz"):
        audio_info(path)


def test_no_audio_stream_is_unsupported(tmp_path):
    path = tmp_path / "video.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(UnsupportedAudioError, match="no audio stream") as exc_info:
        load_audio(path)
    assert_names(exc_info, "video.mp4")


@pytest.mark.parametrize("cut", [0.5, 0.02])
def test_truncated_flac_is_corrupt_and_chains_the_decoder_error(tmp_path, cut):
    buffer = io.BytesIO()
    sf.write(buffer, stereo(2.0, 44100).T, 44100, format="FLAC")
    data = buffer.getvalue()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CorruptAudioError) as exc_info:
        load_audio(path)
    assert_names(exc_info, "cut.flac")
    assert exc_info.value.__cause__ is not None


def test_truncated_wav_loads_what_is_there_with_a_warning(tmp_path):
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_bytes(declared=10**9))
    with pytest.warns(UserWarning, match="cut.wav.*truncated"):
        result = load_audio(path)
    assert result.duration == pytest.approx(1.0)
    assert abs(peak_hz(result.mono(), 16000) - 440) <= 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_corrupt(tmp_path, bad):
    x = tone(440, 2.0, 22050)
    x[33075] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, 22050, subtype="FLOAT")
    with pytest.raises(CorruptAudioError, match="1.50 s") as exc_info:
        load_audio(path, AudioConfig(block_seconds=0.4))
    assert_names(exc_info, "nan.wav")
    with pytest.raises(CorruptAudioError):
        from_array(x, 22050)


def test_errors_share_the_audio_error_base(tmp_path):
    for error in (AudioNotFoundError, UnsupportedAudioError, CorruptAudioError, EmptyAudioError, AudioTooLongError):
        assert issubclass(error, AudioError)
    with pytest.raises(TypeError):
        load_audio(12345)


# --- from_array and Audio ------------------------------------------------------------------------------------


def test_from_array_resamples_like_load_audio(tmp_path):
    x = stereo(1.0, 44100)
    path = tmp_path / "x.wav"
    sf.write(path, x.T, 44100, subtype="FLOAT")
    for mono in (True, False):
        loaded = load_audio(path, mono=mono).samples
        np.testing.assert_allclose(from_array(x, 44100, mono=mono).samples, loaded, atol=1e-6)


def test_from_array_scales_integer_pcm_and_validates_shape_and_rate():
    x = tone(440, 1.0, 16000)
    as_int16 = np.round(x * 32767).astype(np.int16)
    np.testing.assert_allclose(from_array(as_int16, 16000).mono(), x, atol=1e-4)
    as_uint8 = np.round(x * 127 + 128).astype(np.uint8)
    np.testing.assert_allclose(from_array(as_uint8, 16000).mono(), x, atol=1e-2)
    with pytest.raises(CorruptAudioError, match=r"samples\.T"):
        from_array(np.zeros((16000, 2), np.float32), 16000)
    with pytest.raises(CorruptAudioError):
        from_array(x, 0)
    with pytest.raises(CorruptAudioError):
        from_array(x, 16000.5)
    with pytest.raises(CorruptAudioError):
        from_array(np.zeros((1, 2, 16000), np.float32), 16000)
    with pytest.raises(EmptyAudioError):
        from_array(np.zeros(0, np.float32), 16000)
    with pytest.raises(UnsupportedAudioError):
        from_array(np.zeros(16000, np.complex64), 16000)
    with pytest.raises(AudioTooLongError):
        from_array(x, 16000, AudioConfig(max_duration=0.5))


def test_audio_accessors_and_views():
    x = stereo(1.0, 16000)
    result = from_array(x, 16000, mono=False)
    assert result.num_channels == 2 and result.duration == 1.0
    assert np.shares_memory(result.channel(1), result.samples)
    np.testing.assert_array_equal(result.channel(-1), x[1])
    np.testing.assert_allclose(result.mono(), x.mean(axis=0), atol=1e-7)
    single = from_array(x[0], 16000)
    assert single.mono().ndim == 1 and np.shares_memory(single.mono(), single.samples)
    with pytest.raises(ValueError):
        Audio(np.zeros(10, np.float32), 16000)


# --- real speech ----------------------------------------------------------------------------------------------


def test_real_meeting_excerpt():
    path = SHARED_DATA / "ami-excerpts" / "trn01.wav"
    if not path.exists():
        pytest.skip("../shared/data not present: real-speech data is provided by the workplace, see README")
    info = audio_info(path)
    assert (info.sample_rate, info.num_channels, info.format) == (16000, 1, "wav")
    assert info.duration == pytest.approx(30.0, abs=0.1)
    result = load_audio(path)
    assert result.samples.shape == (1, round(info.duration * 16000))
    assert 0.001 < rms(result.mono()) < 0.5
    assert np.array_equal(result.mono(), sf.read(path, dtype="float32")[0])


@pytest.mark.parametrize("rate", [1, 100, MIN_SAMPLE_RATE - 1])
def test_sample_rates_below_the_speech_band_are_refused_from_the_header(tmp_path, rate):
    path = tmp_path / "low.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    data = bytearray(path.read_bytes())
    data[24:32] = struct.pack("<II", rate, rate * 4)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptAudioError, match=f"invalid sample rate {rate} Hz"):
        audio_info(path)
    with pytest.raises(CorruptAudioError, match="invalid sample rate"):
        load_audio(path)
    with pytest.raises(CorruptAudioError, match="invalid sample rate"):
        from_array(np.zeros(rate * 10, np.float32), rate)
    assert load_audio(wav_at(MIN_SAMPLE_RATE, tmp_path)).duration == pytest.approx(1.0)


def wav_at(rate: int, folder) -> str:
    path = folder / f"tone-{rate}.wav"
    sf.write(path, (0.3 * np.sin(np.arange(rate) / 10)).astype(np.float32), rate)
    return str(path)


def test_decoders_print_nothing_and_a_text_file_is_not_audio(data_dir, tmp_path):
    """libmpg123 inside libsndfile prints "error: part2_3_length ..." for this MP3 on fd 2; nothing reaches the
    user's terminal, and a text file named .mp3 is "not an audio file", not "does not exist"."""
    mp3 = tmp_path / "meeting.mp3"
    sf.write(mp3, sf.read(data_dir / "ami-excerpts" / "trn09.wav", dtype="float32")[0], 16000, format="MP3")
    text = tmp_path / "notes.mp3"
    text.write_text("minutes of the meeting\n" * 200)
    script = (f"from diarize.audio import load_audio\nprint(round(load_audio({str(mp3)!r}).duration))\n"
              f"try:\n    load_audio({str(text)!r})\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stderr == ""
    duration, error = out.stdout.splitlines()
    assert duration == "30"
    assert error.startswith(f"UnsupportedAudioError {text}: not an audio file") and "does not exist" not in error
