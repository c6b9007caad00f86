"""The one exception family for user errors; the CLI prints the message and exits 2."""


class KarmmaError(Exception):
    """A user error: bad input, a missing file, an impossible option. The message names the fix."""


class DataError(KarmmaError):
    """A dataset is missing a file, a column or a segment's data."""


class ConfigError(KarmmaError):
    """A config file or option is invalid."""


class BundleError(KarmmaError):
    """A bundle is missing, incomplete or does not match its manifest."""


class BackendUnavailable(KarmmaError):
    """An optional backend (TensorRT, torch-tensorrt) is not installed here."""
