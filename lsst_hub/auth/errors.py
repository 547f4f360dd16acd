"""The ways a directory lookup can fail, each with what a login or refresh makes of it.

Every failure is a :class:`DirectoryError` subclass whose class attributes say how
the login and refresh flows treat it, so that they handle all of them in one place:

``outcome``
    The ``lsst_hub_ldap_logins_total`` label of a login that ends in it.
``level``
    The log level of the line that reports a failed login.
``reason``
    The words that line uses for it.
``wrong_password``
    Whether it is the directory's refusal of the name or password, which counts
    against the login throttle (any other failure counts as nothing).
``refresh_outcome``, ``ends_session``
    The ``lsst_hub_ldap_refreshes_total`` label of a refresh that ends in it, and
    whether that refresh is refused (identity cleared, log in again) rather than
    postponed (the session is kept while the directory cannot answer).
"""

from __future__ import annotations

import logging
import traceback
from typing import ClassVar

__all__ = [
    "DirectoryError",
    "DirectoryUnavailableError",
    "IncompleteIdentityError",
    "InvalidCredentialsError",
    "LoginTimeoutError",
    "SearchLimitError",
    "UserNotFoundError",
    "unexpected",
]


class DirectoryError(Exception):
    """Base class of the failures a login or refresh can end in."""

    outcome: ClassVar[str] = "directory_error"
    level: ClassVar[int] = logging.ERROR
    reason: ClassVar[str] = "directory unavailable"
    wrong_password: ClassVar[bool] = False
    refresh_outcome: ClassVar[str] = "directory_error"
    ends_session: ClassVar[bool] = False


class DirectoryUnavailableError(DirectoryError):
    """No configured server could be used (refused, timed out, TLS failed, dropped)."""


class LoginTimeoutError(DirectoryUnavailableError):
    """The overall deadline of one login or refresh passed before the directory answered."""


class SearchLimitError(DirectoryUnavailableError):
    """The server cut a search short at its size limit: the answer would be incomplete."""


class InvalidCredentialsError(DirectoryError):
    """The directory refused the password (or it cannot be sent at all).

    ``ambiguous`` is true for LDAP's ``invalidCredentials`` answer, which a
    server also gives for a DN that does not exist: only then may another
    ``bind_dn_template`` be tried.
    """

    outcome = "bad_credentials"
    level = logging.WARNING
    reason = "password refused"
    wrong_password = True

    def __init__(self, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class UserNotFoundError(DirectoryError):
    """The user search found no entry (or more than one) for the username."""

    outcome = "unknown_user"
    level = logging.WARNING
    reason = "unknown user"
    wrong_password = True
    refresh_outcome = "removed"
    ends_session = True


class IncompleteIdentityError(DirectoryError):
    """The entry lacks a POSIX attribute the spawner needs."""

    outcome = "incomplete_identity"
    reason = "incomplete POSIX identity"
    refresh_outcome = "incomplete_identity"
    ends_session = True


def unexpected(exc: BaseException) -> str:
    """An unexpected exception for a log line: its type and where it was raised.

    Never its message: that might echo its input (a password) or a secret.
    """
    where = "".join(traceback.format_tb(exc.__traceback__, limit=-3))
    return f"{type(exc).__name__} at\n{where}"
