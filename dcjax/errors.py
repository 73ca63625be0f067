"""Exceptions dcjax raises for problems a user can fix.

Every error a user can cause (a bad config value, a missing data file, a damaged checkpoint) is
raised as a subclass of `DcjaxError` with a one-line message that names the problem and the fix.
The command-line scripts print that line and exit with status 2 instead of a traceback.
"""


class DcjaxError(Exception):
    """Base class: a problem with the user's input or files, not a bug in dcjax."""


class ConfigError(DcjaxError, ValueError):
    """A config field has a value dcjax cannot use."""


class DataError(DcjaxError, ValueError):
    """A dataset cannot be found, read, or does not have the expected shape."""


class CheckpointError(DcjaxError, ValueError):
    """A checkpoint or saved synthetic set is missing, damaged, or does not match the run."""
