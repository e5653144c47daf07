"""The one exception type the CLI turns into a one-line error."""


class WorldModelsError(Exception):
    """A user-facing error: bad input, missing artifacts, mismatched models."""
