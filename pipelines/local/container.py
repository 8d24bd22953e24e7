"""The container contract on a local folder: `/opt/ml/...` paths mapped under a step's root, subprocesses."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipelines import contract
from pipelines.local.errors import StepFailedError, StepOutOfMemoryError, UnsupportedStepError
from pipelines.local.usage import ProcessUsage, gigabytes, run_measured

PYTHON_COMMANDS = frozenset({"python", "python3"})


class ContainerRoot:
    """Stands in for a container's `/opt/ml` (`CDP_OPT_ML_ROOT` tells the scripts where it is)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def map(self, container_path: str, where: str) -> Path:
        prefix = contract.CONTAINER_ROOT
        if container_path != prefix and not container_path.startswith(prefix + "/"):
            raise UnsupportedStepError(f"{where}: container path outside {prefix} cannot be mapped locally")
        return self.root / container_path[len(prefix) :].lstrip("/")

    def map_argument(self, argument: str) -> str:
        """Container paths in arguments become local paths; other arguments are unchanged."""
        prefix = contract.CONTAINER_ROOT
        if argument == prefix or argument.startswith(prefix + "/"):
            return str(self.root / argument[len(prefix) :].lstrip("/"))
        return argument

    def environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update({k: str(v) for k, v in extra.items()})
        env[contract.ROOT_ENV_VAR] = str(self.root)
        return env


def python_command(command: Sequence[str], python: str) -> list[str]:
    """`python3 x.py ...` runs with the executor's interpreter (the local stand-in for the image's)."""
    if not command:
        raise UnsupportedStepError("a step without a container entrypoint runs the image's own program")
    first = Path(command[0]).name
    if first not in PYTHON_COMMANDS:
        raise UnsupportedStepError(f"only python entrypoints run locally, not {first!r}")
    return [python, *command[1:]]


MEMORY_ERROR_MARK = b"MemoryError"
LOG_TAIL_BYTES = 4_096


def _died_of_memory_error(log: Path) -> bool:
    """Whether the log ends with a Python MemoryError (a capped address space, a failed allocation)."""
    with log.open("rb") as handle:
        handle.seek(max(0, log.stat().st_size - LOG_TAIL_BYTES))
        return MEMORY_ERROR_MARK in handle.read()


def run_logged(
    command: list[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    where: str,
    *,
    usages: list[ProcessUsage] | None = None,
    memory_advice: str = "give the step less data or free memory on this machine",
    preexec_fn: Callable[[], None] | None = None,
) -> ProcessUsage:
    """Run `command`, stdout and stderr appended to `log`, measured (appended to `usages`); a non-zero
    exit fails the step, a kill by the kernel or a MemoryError as out of memory, one line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        usage = run_measured(command, env=env, cwd=cwd, stdout=handle, preexec_fn=preexec_fn)
    if usages is not None:
        usages.append(usage)
    if usage.returncode == 0:
        return usage
    if usage.killed or _died_of_memory_error(log):
        raise StepOutOfMemoryError(
            f"{where}: out of memory (peak {gigabytes(usage.peak_rss_bytes)}): {memory_advice}"
        )
    raise StepFailedError(f"{where}: script exited with code {usage.returncode} (see {log.name})")


def default_python() -> str:
    return sys.executable
