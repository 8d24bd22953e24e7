"""The container contract on a local folder: `/opt/ml/...` paths mapped under a step's root, subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipelines import contract
from pipelines.local.errors import StepFailedError, UnsupportedStepError

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


def run_logged(command: list[str], env: dict[str, str], cwd: Path, log: Path, where: str) -> None:
    """Run `command`, stdout and stderr appended to `log`; a non-zero exit fails the step."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        completed = subprocess.run(
            command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, check=False
        )
    if completed.returncode != 0:
        raise StepFailedError(f"{where}: script exited with code {completed.returncode} (see {log.name})")


def default_python() -> str:
    return sys.executable
