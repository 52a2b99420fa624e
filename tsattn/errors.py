"""The error types for what a user can fix or chooses: a bad CSV, a wrong column, an interrupted run."""


class TsattnError(Exception):
    """A user-fixable problem. The message is one line naming the file, column or row, and the fix.

    The CLI prints it without a traceback and exits with `exit_code`.
    """

    exit_code = 2


class Interrupted(TsattnError):
    """Ctrl-C or SIGTERM stopped a command; the message says what was kept and how to go on."""

    exit_code = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


def one_line(err: BaseException, limit: int | None = None) -> str:
    """Another library's error message on one line (whitespace runs collapsed), cut at `limit` characters:
    quoted inside a TsattnError, whose message is always one line."""
    text = " ".join(str(err).split())
    return text if limit is None else text[:limit]
