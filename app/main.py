"""The `cdp` console script (`app.main:main`): every package's commands, `cdp demo` included (`app.cli`)."""

from __future__ import annotations

from app.cli import app, main

__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
