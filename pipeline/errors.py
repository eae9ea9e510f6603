"""The one error type users see: a message that names the file or parameter and what to do."""


class NolaError(Exception):
    """Raised for bad input or stale artifacts; stages print it without a traceback."""


class DatasetError(NolaError, ValueError):
    """A dataset that cannot be read as configured, worded for the user."""
