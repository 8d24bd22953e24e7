"""The error both model flavours raise when a feature frame lacks a column the model was trained on."""

from __future__ import annotations


class MissingFeaturesError(ValueError):
    """The frame lacks columns the model was trained on (names the columns, never values)."""
