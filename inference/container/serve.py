"""`serve`: the container's entry point (`docker run <image> serve`, as SageMaker starts it).

Loads the model once to fail fast with a one-line reason, then runs uvicorn on 0.0.0.0 with the workers
SageMaker's environment asks for (`inference.container.environment`). One worker runs in this process;
more run as uvicorn's worker processes, each loading the model from the folder.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from inference.container.environment import BIND_HOST, ContainerConfigError, ContainerEnvironment

APP_FACTORY = "inference.container.app:app_from_environment"


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 2 for a bad environment or a model folder that cannot be loaded."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":  # `serve serve`: the image's entry point given SageMaker's argument
        args = args[1:]
    if args:
        print(f"serve: takes no arguments (configure it with SageMaker's variables), got {len(args)}",
              file=sys.stderr)  # fmt: skip
        return 2
    import uvicorn

    from inference.container.app import app_from_environment, load_model

    try:
        environment = ContainerEnvironment.from_environ()
        if environment.workers == 1:
            app = app_from_environment()
        else:
            load_model(environment)  # every worker loads it again: check it once, here
    except ContainerConfigError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the model folder: missing, or not a model the platform can score
        print(f"serve: cannot load the model folder: {type(error).__name__}: {str(error)[:200]}",
              file=sys.stderr)  # fmt: skip
        return 2
    from inference.config import ServingConfig
    from inference.serve import uvicorn_limits

    common = {
        **uvicorn_limits(ServingConfig()),  # the container's app runs with the default bounds
        "host": BIND_HOST,
        "port": environment.port,
        "access_log": False,  # the app logs each call itself (no bodies, no paths with values)
        "log_level": "info",
        "timeout_graceful_shutdown": int(environment.timeout_seconds) + 1,
    }
    if environment.workers == 1:
        uvicorn.run(app, **common)
    else:
        uvicorn.run(APP_FACTORY, factory=True, workers=environment.workers, **common)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
