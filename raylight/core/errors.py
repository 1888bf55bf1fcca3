"""User-facing errors: the CLI prints them as one line and exits non-zero, never a traceback."""


class RaylightError(Exception):
    """Bad input from the user (config, file, checkpoint, CLI argument)."""


class ConfigError(RaylightError):
    """A config key is unknown, mistyped or out of range."""


class CheckpointError(RaylightError):
    """A checkpoint is missing, unreadable or does not fit the model."""


class RunFailed(RaylightError):
    """Training started and then failed; ``summary.json`` and (when finite) a final checkpoint were kept."""

    exit_code = 1


class NonFiniteError(RaylightError):
    """NaN or inf in experience, data or a loss: training stops before the weights are poisoned."""
