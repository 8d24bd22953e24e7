"""The app layer: the `cdp` command and the demo, composing the packages below (the data platform,
features, pipelines, inference and monitoring). Nothing below imports it."""


def __getattr__(name: str) -> object:
    """`from app import Platform`: the notebook API, imported on first use (the CLI stays fast to start)."""
    if name == "Platform":
        from app.notebook import Platform

        return Platform
    raise AttributeError(f"module 'app' has no attribute {name!r}")
