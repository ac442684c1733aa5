"""Exceptions raised by saecodec.

Every error a user can provoke with bad input derives from :class:`SaecodecError`, a
``ValueError`` so that generic ``except ValueError`` handlers in array libraries keep
working.
"""


class SaecodecError(ValueError):
    """Base class of all saecodec errors caused by input, payloads or models."""


class PayloadError(SaecodecError):
    """A payload is truncated, corrupted, or was written by an unknown format version."""


class ModelNotFoundError(SaecodecError, LookupError):
    """No model file with the requested identity or name could be found."""


class ModelMismatchError(SaecodecError):
    """A model file or payload does not belong to the model that was asked for."""


class LossyCountsWarning(UserWarning):
    """Integer counts coded in the pure mode: what comes back is not the counts."""
