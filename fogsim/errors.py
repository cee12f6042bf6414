"""Errors that fogsim reports to users as a message, never as a traceback."""

from __future__ import annotations


class FogsimError(Exception):
    """A problem in the user's input or environment, with what to do about it.

    The CLI prints the message and exits with ``exit_code``; nothing else is
    caught there, so a bug still surfaces as a traceback.
    """

    exit_code = 1


class UserInputError(FogsimError):
    """Bad input: a malformed scenario, impossible parameters, a missing file."""

    exit_code = 2


class DatasetNotFoundError(FogsimError):
    """A dataset could not be found in any of the places fogsim looks."""

    exit_code = 2


class CheckpointError(FogsimError):
    """A checkpoint is missing, corrupt, or not a fogsim checkpoint."""

    exit_code = 2
