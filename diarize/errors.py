"""One exception family for everything the library refuses, so callers catch ``DiarizeError``."""


class DiarizeError(Exception):
    """Base class of every error the ``diarize`` library raises on purpose."""


class AudioError(DiarizeError):
    """The audio input cannot be used (missing, unreadable, corrupt, empty or absurd)."""


class AudioNotFoundError(AudioError):
    """The audio path does not exist or is not a file."""


class UnsupportedAudioError(AudioError):
    """The file is not audio, or its format/codec cannot be decoded."""


class CorruptAudioError(AudioError):
    """The file claims to be audio but its contents are broken, truncated or absurd."""


class EmptyAudioError(AudioError):
    """The audio holds no samples, or is too short to analyse."""


class AudioTooLongError(AudioError):
    """The audio is longer than the configured ``AudioConfig.max_duration``."""


class IdentificationError(DiarizeError, ValueError):
    """A speaker-identification request is invalid (speaker types, known values, channel roles, profiles)."""


class TranscriptError(IdentificationError):
    """A supplied transcript cannot be read as timed words (word list or Whisper JSON)."""


class ConfigError(DiarizeError, ValueError):
    """A configuration value or hint is invalid (e.g. ``min_speakers > max_speakers``)."""


class ModelError(DiarizeError):
    """A model's weights cannot be found, loaded or verified."""
