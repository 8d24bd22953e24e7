"""The notebook API: `from app.notebook import Platform`, then `p = Platform.from_env()`
(see `app.notebook.platform`)."""

from app.notebook.platform import Platform

__all__ = ["Platform"]
