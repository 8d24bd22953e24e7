"""`python -m bench [name ...]`: run every benchmark module `bench/bench_*.py` (or the named ones).

`python -m bench NAME --option ...` passes the options to that one benchmark's `main(argv)`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")]
    options = argv[len(names) :] if names == argv[: len(names)] else None
    if options is None:
        print("usage: python -m bench [name ...] | python -m bench NAME [--option ...]", file=sys.stderr)
        return 2
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
