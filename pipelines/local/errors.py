"""Errors of the local pipeline executor. Messages name the step and field, never data values."""

from __future__ import annotations


class ExecutorError(Exception):
    """Base class of the executor's errors."""


class DefinitionError(ExecutorError, ValueError):
    """The definition JSON is malformed: an unknown reference, a cycle, a missing field."""


class UnsupportedStepError(ExecutorError):
    """A step type or step feature the local executor cannot run (raised before any step runs)."""


class StepFailedError(ExecutorError):
    """A step failed (a script exited non-zero, an input was missing, a Fail step was reached)."""


class StepOutOfMemoryError(StepFailedError):
    """A step's script was killed by the kernel (SIGKILL) or died of MemoryError: the message names its
    peak memory and the settings to change."""
