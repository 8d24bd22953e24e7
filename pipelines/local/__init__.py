"""Docker-free executor of SageMaker pipeline definition JSON (the embedded default for SageMaker Pipelines).

`LocalPipelineExecutor(...).run(definition)` executes the same JSON that would be upserted to SageMaker.
"""

from pipelines.local.errors import DefinitionError, ExecutorError, UnsupportedStepError
from pipelines.local.executor import LocalPipelineExecutor, ModelRegistrar
from pipelines.local.record import RunRecord, StepRecord
from pipelines.local.rerun import NoSourceRunError

__all__ = [
    "DefinitionError",
    "ExecutorError",
    "LocalPipelineExecutor",
    "ModelRegistrar",
    "NoSourceRunError",
    "RunRecord",
    "StepRecord",
    "UnsupportedStepError",
]
