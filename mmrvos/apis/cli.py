"""What every command-line tool of mmrvos does with a user's mistake: ``error: <message>`` on
stderr and exit status 2, no traceback (``MMRVOS_DEBUG=1`` shows it).

Only the standard library is imported here, so that light tools can load this file by path.
Usage, at the bottom of a tool::

    if __name__ == '__main__':
        sys.exit(run_cli(main))
"""
import os
import sys
from typing import Callable

DEBUG_ENV = 'MMRVOS_DEBUG'
EXIT_ERROR = 2  # as argparse's usage errors
# errors of the checks of mmrvos and its tools: they name the file and the problem
CLEAR_ERRORS = (OSError, ValueError)
CLEAR_ERROR_NAMES = ('CLIError', 'UnsafeCheckpointError')


class CLIError(Exception):
    """A user error that an entry point reports as ``error: <message>``."""


def is_clear_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of the project's clear, user-facing errors (missing or existing
    files, bad values, unsafe checkpoints) rather than a bug."""
    return isinstance(exc, CLEAR_ERRORS) or any(
        cls.__name__ in CLEAR_ERROR_NAMES for cls in type(exc).__mro__)


def run_cli(main: Callable, *args) -> int:
    """Run a tool's ``main``; return its exit status.

    A clear error (:func:`is_clear_error`) prints ``error: <message>`` to stderr and returns 2;
    Ctrl-C prints ``interrupted`` and returns 130. Anything else (a bug) propagates with its
    traceback. With ``MMRVOS_DEBUG=1`` every error propagates.
    """
    try:
        main(*args)
    except KeyboardInterrupt:
        if os.environ.get(DEBUG_ENV):
            raise
        print('interrupted', file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: B902
        if os.environ.get(DEBUG_ENV) or not is_clear_error(exc):
            raise
        print(f'error: {exc}', file=sys.stderr)
        return EXIT_ERROR
    return 0
