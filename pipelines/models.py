"""The model pipelines by name: `fraud`, `clv`, `segmentation`."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from pipelines.spec import ModelPipelineSpec

PIPELINES = ("fraud", "clv", "segmentation")


def pipeline_module(model: str) -> ModuleType:
    """`pipelines.<model>.pipeline` (exposes `SPEC` and `get_pipeline`)."""
    if model not in PIPELINES:
        raise ValueError(f"unknown pipeline {model!r}; choose one of {', '.join(PIPELINES)}")
    return import_module(f"pipelines.{model}.pipeline")


def spec_of(model: str) -> ModelPipelineSpec:
    return pipeline_module(model).SPEC
