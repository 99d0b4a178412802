"""The batch's own error: the run as a whole cannot go on (a single bad file is recorded, not raised)."""

from ..errors import DiarizeError


class BatchError(DiarizeError):
    """The batch cannot start or continue: no source, output folder locked, models fail to load, store broken."""
