"""The project's own exception types: user mistakes are `NasvizError`s with a one-line message."""


class NasvizError(Exception):
    """A user-facing error: bad input, missing data, a corrupt file. Its message is one line."""


class ConfigError(NasvizError, ValueError):
    """A configuration value is wrong; the message names the value and what is allowed."""


class DataError(NasvizError):
    """A dataset cannot be found or loaded."""


class CheckpointError(NasvizError):
    """A checkpoint or run directory is missing, corrupt, unsafe or does not match the run."""


class DivergedError(NasvizError):
    """Training produced a NaN or infinite loss."""
