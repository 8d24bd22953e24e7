"""The step-script contract: what a model's `preprocess.py`, `train.py` and `evaluate.py` may rely on.

Scripts live in one folder per model (`training/<model>/`). They run unchanged in SageMaker containers and
under the local executor, which maps the container paths onto local folders:

* Every container path is under `/opt/ml`. Scripts take that root from the environment variable
  `CDP_OPT_ML_ROOT` (unset in SageMaker, so the default `/opt/ml` applies)::

      OPT_ML = Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))

* `preprocess.py` (Processing step `Preprocess`, run as `python3 preprocess.py`): the feature query's
  result is in `OPT_ML/processing/input/features/` (one or more Parquet files, Athena output in SageMaker,
  DuckDB output locally). It writes Parquet to `OPT_ML/processing/output/{train,validation,test}/`.
  Only this one file is shipped to the container: it must not import sibling modules.
* `train.py` (Training step `Train`, script mode): reads `SM_CHANNEL_TRAIN` and `SM_CHANNEL_VALIDATION`
  (folders of Parquet files), hyperparameters as `--name value` arguments (also `SM_HPS`, JSON), and
  writes the model into `SM_MODEL_DIR` (saved as JSON/UBJ, not pickle). The whole model folder is shipped,
  so it may import sibling modules; its working directory is that folder. `SM_OUTPUT_DATA_DIR` takes
  optional extra outputs.
* `evaluate.py` (Processing step `Evaluate`): the trained model is `OPT_ML/processing/input/model/
  model.tar.gz` (the training step's `SM_MODEL_DIR`, tarred and gzipped), the test split is in
  `OPT_ML/processing/input/test/`. It writes `OPT_ML/processing/output/evaluation/evaluation.json`::

      {"metrics": {"<metric name>": {"value": <number>}, ...}}

  The pipeline's gate reads `metrics.<name>.value` for every metric its spec names; extra metrics are
  kept and attached to the registered model.
* Scripts exit non-zero on failure; their stdout/stderr go to the step's log. Logs must not contain PII.
"""

from __future__ import annotations

CONTAINER_ROOT = "/opt/ml"
ROOT_ENV_VAR = "CDP_OPT_ML_ROOT"

PROCESSING_INPUT = f"{CONTAINER_ROOT}/processing/input"
PROCESSING_OUTPUT = f"{CONTAINER_ROOT}/processing/output"

FEATURES_INPUT = "features"
SPLITS = ("train", "validation", "test")
MODEL_INPUT = "model"
EVALUATION_OUTPUT = "evaluation"
EVALUATION_FILE = "evaluation.json"
MODEL_ARCHIVE = "model.tar.gz"

PREPROCESS_SCRIPT = "preprocess.py"
TRAIN_SCRIPT = "train.py"
EVALUATE_SCRIPT = "evaluate.py"


def input_path(name: str) -> str:
    """The container folder of a processing input (e.g. `/opt/ml/processing/input/features`)."""
    return f"{PROCESSING_INPUT}/{name}"


def output_path(name: str) -> str:
    """The container folder of a processing output (e.g. `/opt/ml/processing/output/train`)."""
    return f"{PROCESSING_OUTPUT}/{name}"


def metric_json_path(metric: str) -> str:
    """The JsonGet path of a metric's value inside `evaluation.json`."""
    return f"metrics.{metric}.value"
