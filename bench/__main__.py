"""`python -m bench [name ...]`: run every benchmark module `bench/bench_*.py` (or the named ones).

`python -m bench NAME --option ...` passes the options to that one benchmark's `main(argv)`.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = list(itertools.takewhile(lambda a: not a.startswith("-"), argv))
    options = argv[len(names) :]  # everything from the first option on (option values included)
    if options and len(names) != 1:
        print("options apply to one benchmark: python -m bench NAME --option ...", file=sys.stderr)
        return 2
    names = names or sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        if options:
            module.main(options)
        else:
            module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
