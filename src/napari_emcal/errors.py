"""Exception types of the public API.

Every error a user can cause by what they pass in is a subclass of :class:`ValueError`,
so ``except ValueError`` keeps working, while callers that want to tell a bad parameter
from bad data can catch the specific type.
"""


class EmcalError(Exception):
    """Base class of napari-emcal's own exceptions."""


class InvalidParameterError(EmcalError, ValueError):
    """A calibration parameter is missing, non-finite, out of range or inconsistent."""


class InvalidDataError(EmcalError, ValueError):
    """An array or file does not have the shape, type or content the method needs."""


class CalibrationFailedError(EmcalError, RuntimeError):
    """The data cannot determine the requested calibration (featureless, pure noise...)."""


class Cancelled(EmcalError):
    """A long computation was cancelled by its caller."""


class CalibrationWarning(UserWarning):
    """A result was computed, but from less than the user asked for (e.g. a table lookup
    outside the calibrated range returns the nearest calibration, not an extrapolation)."""


class IncompleteDataWarning(UserWarning):
    """A file or table lacked some fields; they were left empty for the user to fill."""
