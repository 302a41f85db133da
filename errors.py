"""The one exception type for input a user can fix.

Raise `InputError` with a message that names the file, the field, the value and the fix; the CLI
prints it and exits 2, the API answers 4xx. Anything else is a bug and may show a traceback.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input: the message says where and how to fix it."""

    exit_code = 2
