"""One exception type for mistakes a user can fix.

Entry scripts catch :class:`UserError` and print its message as one line (no traceback) and exit with status 2.
Raise it for bad input: missing folders, unreadable images, unknown config keys, wrong checkpoints, ...
The message should say what is wrong and how to fix it.
"""


class UserError(Exception):
    """A problem with the user's input, config or files, reported as one readable line."""
