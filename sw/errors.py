"""User-facing errors: one line naming the file, the field, the limit and what was found."""

__all__ = ["UserError", "user_error"]


class UserError(Exception):
    """An error caused by the user's input, not by a bug in sparsa.

    The CLI prints ``str(err)`` as one line (no traceback) and exits with status 2.
    """


def user_error(where, field, limit, found):
    """Build a :class:`UserError` in the house format.

    ``where`` is usually a file path, ``field`` the offending array/key/option,
    ``limit`` what was allowed and ``found`` what was seen.
    """
    head = f"{where}: " if where else ""
    return UserError(f"{head}{field}: expected {limit}, found {found}")
