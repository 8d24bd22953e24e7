"""The one module that calls the SageMaker Python SDK (v3): builds a model's pipeline from its spec.

Importing this module imports `sagemaker.mlops` (~4 s); import it lazily. Call `prepare_sdk_environment`
first (the SDK creates a boto3 client at import time and needs a region).

SDK 3.27 drops `DatasetDefinition` (Athena) processing inputs when it serialises a step, so the pipeline
object returned here puts them back in `definition()`; `upsert`/`create` use the same definition.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagemaker.core import image_uris
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
from sagemaker.core.processing import ScriptProcessor
from sagemaker.core.shapes import (
    AthenaDatasetDefinition,
    Channel,
    DatasetDefinition,
    DataSource,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
    S3DataSource,
)
from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import Parameter, ParameterFloat, ParameterInteger, ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.model_step import ModelStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train import ModelTrainer
from sagemaker.train.configs import Compute, OutputDataConfig, SourceCode

from cdp.aws_resources import ATHENA_WORKGROUP
from cdp.catalog.dialect import to_athena
from pipelines import contract
from pipelines.spec import Gate, HyperparameterValue, ModelPipelineSpec, hyperparameter_type

STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_GATE = "Gate"
STEP_REGISTER = "Register"
STEP_FAIL = "Fail"
PROPERTY_FILE = "EvaluationReport"

# xgboost 3.2: the version the project pins (train.py's collective API, the booster format serving reads)
FRAMEWORK_VERSIONS = {"xgboost": "3.2-0", "sklearn": "1.2-1"}
DEFAULT_INSTANCE = "ml.m5.xlarge"
INFERENCE_INSTANCE = "ml.m5.large"
INFERENCE_CONTENT_TYPES = ("application/json", "text/csv")  # what the inference image's /invocations reads
CACHE = CacheConfig(enable_caching=True, expire_after="P30D")
FILES_PER_SPLIT_ARGUMENT = "--files-per-split"  # preprocess.py: one train file per training host


class CdpPipeline(Pipeline):
    """A `Pipeline` whose definition keeps the Athena dataset inputs the SDK's serialiser drops."""

    def __init__(self, *args: Any, dataset_inputs: dict[tuple[str, str], dict] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._dataset_inputs = dict(dataset_inputs or {})

    def definition(self) -> str:
        definition = json.loads(super().definition())
        for step in definition["Steps"]:
            for processing_input in step.get("Arguments", {}).get("ProcessingInputs", []):
                dataset = self._dataset_inputs.get((step["Name"], processing_input["InputName"]))
                if dataset is not None and "S3Input" not in processing_input:
                    processing_input["DatasetDefinition"] = dataset
        return json.dumps(definition)


def _image(framework: str, region: str) -> str:
    return image_uris.retrieve(
        framework=framework,
        region=region,
        version=FRAMEWORK_VERSIONS[framework],
        py_version="py3",
        instance_type=DEFAULT_INSTANCE,
    )


def _output(bucket_prefix: str, name: str) -> ProcessingOutput:
    """A processing output under `<prefix>/<execution id>/<name>`, so runs never overwrite each other."""
    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=Join(on="/", values=[bucket_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, name]),
            local_path=contract.output_path(name),
            s3_upload_mode="EndOfJob",
        ),
    )


def _s3_input(name: str, uri: Any) -> ProcessingInput:
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=contract.input_path(name),
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def _athena_request(sql: str, output_uri: str, database: str, workgroup: str) -> dict[str, Any]:
    """The CreateProcessingJob `DatasetDefinition` of an Athena query whose Parquet result feeds a step."""
    return {
        "AthenaDatasetDefinition": {
            "Catalog": "AwsDataCatalog",
            "Database": database,
            "QueryString": sql,
            "WorkGroup": workgroup,
            "OutputS3Uri": output_uri,
            "OutputFormat": "PARQUET",
        },
        "LocalPath": contract.input_path(contract.FEATURES_INPUT),
        "DataDistributionType": "FullyReplicated",
        "InputMode": "File",
    }


def _training_channel(split: str, uri: Any, sharded: bool) -> Channel:
    """A split as a training channel; `sharded`: each host gets some of its files (`ShardedByS3Key`)."""
    return Channel(
        channel_name=split,
        data_source=DataSource(
            s3_data_source=S3DataSource(
                s3_data_type="S3Prefix",
                s3_uri=uri,
                s3_data_distribution_type="ShardedByS3Key" if sharded else "FullyReplicated",
            )
        ),
        input_mode="File",
    )


def _hyperparameter(name: str, default: HyperparameterValue) -> Parameter:
    """The typed pipeline parameter of a hyperparameter (`pipelines.spec`: Integer, Float or String)."""
    kind = hyperparameter_type(default)
    if kind == "Integer":
        return ParameterInteger(name=name, default_value=default)
    if kind == "Float":
        return ParameterFloat(name=name, default_value=default)
    return ParameterString(name=name, default_value=default)


def _condition(gate: Gate, value: JsonGet, threshold: ParameterFloat):
    if gate.comparison == ">=":
        return ConditionGreaterThanOrEqualTo(left=value, right=threshold)
    return ConditionLessThanOrEqualTo(left=value, right=threshold)


def build_pipeline(
    spec: ModelPipelineSpec,
    session: PipelineSession,
    role: str,
    bucket: str,
    *,
    scripts_dir: Path | None = None,
    feature_query: str | None = None,
    processing_image: str | None = None,
    training_image: str | None = None,
    athena_database: str = "cdp",
    athena_workgroup: str = ATHENA_WORKGROUP,
    inference_image: str | None = None,
) -> CdpPipeline:
    """The model's pipeline: Preprocess -> Train -> Evaluate -> Gate -> Register | Fail.

    Every hyperparameter of `spec` is a pipeline parameter (`pipelines.spec`: `max_depth` -> `MaxDepth`)
    defaulting to the spec's value. Machines are pipeline parameters defaulting to `spec.sizing`:
    ProcessingInstanceType/Count (Preprocess, Evaluate) and TrainingInstanceType/Count (Train). With
    `spec.distributed_training` the train channel is sharded by S3 key and Preprocess writes
    `TrainingInstanceCount` train files, so every host trains on its share; otherwise every host gets
    every file (the scripts are single-host: keep the counts at 1).

    Building uploads the scripts of `scripts_dir` (default `training/<model>/`) through `session`.
    `inference_image` is this project's inference image (`inference/Dockerfile`, the `serve` contract):
    the registered model runs in it, JSON and CSV in, reason codes out. Without it the package names the
    training image (the stock framework image, which does not speak the platform's JSON contract).
    """
    scripts = Path(scripts_dir or spec.default_scripts_dir).resolve()
    for script in (contract.PREPROCESS_SCRIPT, contract.TRAIN_SCRIPT, contract.EVALUATE_SCRIPT):
        if not (scripts / script).is_file():
            raise FileNotFoundError(f"pipeline {spec.model}: missing step script {script} in {scripts.name}/")
    region = session.boto_region_name
    processing_image = processing_image or _image("sklearn", region)
    training_image = training_image or _image(spec.framework, region)
    prefix = f"s3://{bucket}/pipelines/{spec.model}"

    sizing = spec.sizing
    processing_instance = ParameterString(name="ProcessingInstanceType", default_value=sizing.processing_type)
    processing_count = ParameterInteger(name="ProcessingInstanceCount", default_value=sizing.processing_count)
    training_instance = ParameterString(name="TrainingInstanceType", default_value=sizing.training_type)
    training_count = ParameterInteger(name="TrainingInstanceCount", default_value=sizing.training_count)
    approval_status = ParameterString(name="ModelApprovalStatus", default_value="PendingManualApproval")
    thresholds = {
        g.parameter: ParameterFloat(name=g.parameter, default_value=g.threshold) for g in spec.gates
    }
    script_parameters = [
        (p.argument, ParameterString(name=p.name, default_value=p.default))
        for p in spec.preprocess_parameters
    ]
    hyperparameters = {
        name: _hyperparameter(spec.hyperparameter_parameters[name], value)
        for name, value in spec.hyperparameters.items()
    }

    processor = ScriptProcessor(
        image_uri=processing_image,
        command=["python3"],
        instance_type=processing_instance,
        instance_count=processing_count,
        role=role,
        sagemaker_session=session,
        base_job_name=f"{spec.pipeline_name}-process",
    )

    # -- Preprocess: feature query (Athena) -> train / validation / test Parquet ----------------------
    features = ProcessingInput(
        input_name=contract.FEATURES_INPUT,
        dataset_definition=DatasetDefinition(
            athena_dataset_definition=AthenaDatasetDefinition(
                catalog="AwsDataCatalog",
                database=athena_database,
                query_string=to_athena(feature_query or spec.feature_query),
                output_s3_uri=f"{prefix}/athena/",
                work_group=athena_workgroup,
                output_format="PARQUET",
            ),
            local_path=contract.input_path(contract.FEATURES_INPUT),
            data_distribution_type="FullyReplicated",
            input_mode="File",
        ),
    )
    dataset_request = _athena_request(
        to_athena(feature_query or spec.feature_query), f"{prefix}/athena/", athena_database, athena_workgroup
    )
    preprocess_arguments: list[Any] = [
        item for argument, value in script_parameters for item in (argument, value)
    ]
    if spec.distributed_training:  # one train file per training host (a string argument, hence the Join)
        preprocess_arguments += [FILES_PER_SPLIT_ARGUMENT, Join(on="", values=[training_count])]
    preprocess = ProcessingStep(
        name=STEP_PREPROCESS,
        step_args=processor.run(
            code=str(scripts / contract.PREPROCESS_SCRIPT),
            inputs=[features],
            outputs=[_output(prefix, split) for split in contract.SPLITS],
            arguments=preprocess_arguments or None,
        ),
        cache_config=CACHE,
        description=f"Pull the {spec.model} feature set from the lake and split it by time.",
    )
    split_uri = preprocess.properties.ProcessingOutputConfig.Outputs

    # -- Train: script mode -----------------------------------------------------------------------------
    trainer = ModelTrainer(
        training_image=training_image,
        source_code=SourceCode(source_dir=str(scripts), entry_script=contract.TRAIN_SCRIPT),
        compute=Compute(instance_type=training_instance, instance_count=training_count),
        # CreateTrainingJob takes string values: each parameter is turned into one at run time
        hyperparameters={name: parameter.to_string() for name, parameter in hyperparameters.items()},
        input_data_config=[
            _training_channel("train", split_uri["train"].S3Output.S3Uri, sharded=spec.distributed_training),
            _training_channel("validation", split_uri["validation"].S3Output.S3Uri, sharded=False),
        ],
        output_data_config=OutputDataConfig(s3_output_path=f"{prefix}/models", compression_type="GZIP"),
        role=role,
        sagemaker_session=session,
        base_job_name=f"{spec.pipeline_name}-train",
    )
    train = TrainingStep(name=STEP_TRAIN, step_args=trainer.train(), cache_config=CACHE)
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts

    # -- Evaluate: model + test split -> evaluation.json ------------------------------------------------
    report = PropertyFile(
        name=PROPERTY_FILE, output_name=contract.EVALUATION_OUTPUT, path=contract.EVALUATION_FILE
    )
    evaluate = ProcessingStep(
        name=STEP_EVALUATE,
        step_args=processor.run(
            code=str(scripts / contract.EVALUATE_SCRIPT),
            inputs=[
                _s3_input(contract.MODEL_INPUT, model_uri),
                _s3_input("test", split_uri["test"].S3Output.S3Uri),
            ],
            outputs=[_output(prefix, contract.EVALUATION_OUTPUT)],
        ),
        property_files=[report],
        cache_config=CACHE,
    )
    evaluation_uri = Join(
        on="/",
        values=[
            evaluate.properties.ProcessingOutputConfig.Outputs[contract.EVALUATION_OUTPUT].S3Output.S3Uri,
            contract.EVALUATION_FILE,
        ],
    )

    # -- Register (PendingManualApproval, metrics attached) or Fail -------------------------------------
    serving: dict[str, Any] = {"image_uri": training_image, "content_types": ["application/json"]}
    if inference_image:
        serving = {
            "image_uri": inference_image,
            "content_types": list(INFERENCE_CONTENT_TYPES),
            "env_vars": {"CDP_MODEL_NAME": spec.model_package_group},  # the name its answers carry
        }
    builder = ModelBuilder(
        s3_model_data_url=model_uri,
        image_uri=serving["image_uri"],
        sagemaker_session=session,
        role_arn=role,
        **({"env_vars": serving["env_vars"]} if "env_vars" in serving else {}),
    )
    register = ModelStep(
        name=STEP_REGISTER,
        step_args=builder.register(
            model_package_group_name=spec.model_package_group,
            content_types=serving["content_types"],
            response_types=["application/json"],
            inference_instances=[INFERENCE_INSTANCE],
            transform_instances=[INFERENCE_INSTANCE],
            approval_status=approval_status,
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(s3_uri=evaluation_uri, content_type="application/json")
            ),
        ),
    )
    metric_values = {
        g.metric: JsonGet(
            step_name=STEP_EVALUATE, property_file=report, json_path=contract.metric_json_path(g.metric)
        )
        for g in spec.gates
    }
    message: list[Any] = [f"The {spec.model} model did not pass its quality gate:"]
    for gate in spec.gates:
        message += [
            f"{gate.metric} =",
            metric_values[gate.metric],
            f"(required {gate.comparison}",
            thresholds[gate.parameter],
            ");",
        ]
    fail = FailStep(name=STEP_FAIL, error_message=Join(on=" ", values=message))
    gate_step = ConditionStep(
        name=STEP_GATE,
        conditions=[_condition(g, metric_values[g.metric], thresholds[g.parameter]) for g in spec.gates],
        if_steps=[register],
        else_steps=[fail],
    )

    parameters = [
        processing_instance,
        processing_count,
        training_instance,
        training_count,
        approval_status,
        *thresholds.values(),
        *(value for _, value in script_parameters),
        *hyperparameters.values(),
    ]
    names = [parameter.name for parameter in parameters]
    if len(set(names)) != len(names):
        taken = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"pipeline {spec.model}: parameter name(s) declared twice: {taken}")
    return CdpPipeline(
        name=spec.pipeline_name,
        parameters=parameters,
        steps=[preprocess, train, evaluate, gate_step],
        sagemaker_session=session,
        dataset_inputs={(STEP_PREPROCESS, contract.FEATURES_INPUT): dataset_request},
    )
