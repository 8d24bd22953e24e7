"""`python -m monitoring.promotion MODEL`: run the promotion gate on a model's pending candidate.

Prints the decision, and with `--report PATH` writes it as JSON (CI keeps it as a build artifact). Exits 0
whatever the outcome (a rejection is a decision, not a failure); 2 when the gate itself could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.promotion", description=__doc__.splitlines()[0]
    )
    parser.add_argument("model", help="registered model name, e.g. cdp-fraud")
    parser.add_argument("--version", type=int, help="candidate version (default: the newest pending one)")
    parser.add_argument("--dry-run", action="store_true", help="decide but change nothing")
    parser.add_argument("--report", type=Path, help="write the decision as JSON to this file")
    args = parser.parse_args(argv)
    return run_promotion(args.model, args.version, args.dry_run, args.report)


def run_promotion(model: str, version: int | None, dry_run: bool = False, report: Path | None = None) -> int:
    """Decide, print the decision, write it as JSON to `report`; the exit code (0; 2: gate not run; 3:
    the caller's identity may not promote). `python -m monitoring.promotion` and `cdp promote` both end here.
    The decision is made as the caller's identity (in CodeBuild: its IAM role), with role model-approver."""
    from rich.console import Console

    from cdp.backends import Backends
    from cdp.registry.port import RegistryError
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.authorize import authorize
    from monitoring.promotion.promote import promote

    backends = Backends()
    try:
        caller = authorize(backends.identity, backends.audit, "promote")
        decision = promote(
            backends, model, candidate_version=version, actor=caller.id, role=caller.role, dry_run=dry_run
        )
    except (AccessDenied, NotAuthenticated) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 3
    except RegistryError as error:
        print(f"promotion of {model} failed: {error}", file=sys.stderr)
        return 2
    Console().print(decision)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(decision.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
