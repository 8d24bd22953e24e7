"""`python -m infra [-c key=value ...] [--outdir DIR]`: synthesise the app (what `cdk synth` runs)."""

from __future__ import annotations

import argparse

from infra.app import build_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--outdir", default=None, help="cloud assembly folder (the cdk CLI sets CDK_OUTDIR)")
    args = parser.parse_args(argv)
    context = dict(item.split("=", 1) for item in args.context)
    app, _ = build_app(context, args.outdir)
    assembly = app.synth()
    print(f"synthesised {len(assembly.stacks)} stacks into {assembly.directory}")


if __name__ == "__main__":
    main()
