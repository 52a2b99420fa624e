"""The one error type for mistakes a user can make and fix (bad CSV, wrong column, too-short series...)."""


class TsattnError(Exception):
    """A user-fixable problem. The message is one line naming the file, column or row, and the fix.

    The CLI prints it without a traceback and exits with code 2.
    """
