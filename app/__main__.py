"""`python -m app`: the `cdp` command (every command, `demo` included)."""

from app.main import main

main()
