"""The errors of bad input, and the one tuple of them every face catches.

The libraries keep their own error types (``pipelines.InputError``,
``reward.RewardError``, ``bandit.BanditError``: each can be used alone); the application
raises ``StudioError``. All four are ``ValueError``s that say what is wrong; the faces
(CLI, API, UI) catch exactly ``USER_ERRORS`` — never a bare ``ValueError``, which would
hide bugs — and show the message as one line.
"""

from __future__ import annotations


class StudioError(ValueError):
    """Bad input to a studio function; the message says what and, where it helps, how to
    fix it. Faces show it as one line (the CLI exits with code 2)."""


def __getattr__(name: str):
    """``USER_ERRORS``: every error that means "bad input", from the application and its
    libraries — built on first use, so that importing this module (``studio --help``)
    does not import the libraries."""
    if name == "USER_ERRORS":
        from bandit.errors import BanditError
        from pipelines.errors import InputError
        from reward.errors import RewardError

        return (StudioError, InputError, RewardError, BanditError)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
