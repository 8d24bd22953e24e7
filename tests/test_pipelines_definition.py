"""Golden tests of the three pipeline definitions (built offline with SageMaker SDK v3 under moto).

Set CDP_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cdp.objectstore.local import FolderObjectStore
from pipelines.local.graph import parse_steps, run_order
from pipelines.models import spec_of
from pipelines.normalise import normalise_definition
from tests.pipeline_support import BUCKET, SCRIPTS, build

GOLDEN = Path(__file__).parent / "golden"
MODELS = ("fraud", "clv", "segmentation")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store = FolderObjectStore(tmp_path_factory.mktemp("definitions"), fsync=False)
    return store, {model: build(model, store) for model in MODELS}


@pytest.mark.parametrize("model", MODELS)
def test_definition_matches_golden(built, model):
    definition = normalise_definition(built[1][model])
    golden = GOLDEN / f"pipeline_{model}.json"
    if os.environ.get("CDP_UPDATE_GOLDEN") == "1":
        golden.write_text(json.dumps(definition, indent=2, sort_keys=True) + "\n")
    assert golden.is_file(), f"no golden file {golden.name}; run with CDP_UPDATE_GOLDEN=1"
    assert definition == json.loads(golden.read_text()), (
        f"{model} definition changed; if intended, CDP_UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("model", MODELS)
def test_preprocess_script_parameters_reach_the_definition(built, model):
    """A spec's preprocess parameters are pipeline parameters handed to the script as arguments (fraud:
    NegativeSampleRate -> --negative-sample-rate, then the train file count); the others get none."""
    definition = built[1][model]
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    preprocess = next(s for s in definition["Steps"] if s["Name"] == "Preprocess")
    arguments = preprocess["Arguments"]["AppSpecification"].get("ContainerArguments") or []
    expected = []
    for script_parameter in spec_of(model).preprocess_parameters:
        assert parameters[script_parameter.name] == {
            "Name": script_parameter.name,
            "Type": "String",
            "DefaultValue": script_parameter.default,
        }
        expected += [script_parameter.argument, {"Get": f"Parameters.{script_parameter.name}"}]
    sharding = ["--files-per-split"] if spec_of(model).distributed_training else []  # see the sizing test
    assert arguments[: len(expected)] == expected and arguments[len(expected) :: 2] == sharding
    if model == "fraud":
        assert expected == ["--negative-sample-rate", {"Get": "Parameters.NegativeSampleRate"}]


@pytest.mark.parametrize("model", MODELS)
def test_steps_parameters_and_dependencies(built, model):
    definition = built[1][model]
    spec = spec_of(model)
    assert definition["Version"] == "2020-12-01"
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert parameters["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"
    for gate in spec.gates:
        assert parameters[gate.parameter] == {
            "Name": gate.parameter,
            "Type": "Float",
            "DefaultValue": gate.threshold,
        }

    nodes = parse_steps(definition)
    assert {n: nodes[n].type for n in nodes} == {
        "Preprocess": "Processing",
        "Train": "Training",
        "Evaluate": "Processing",
        "Gate": "Condition",
        "Register": "RegisterModel",
        "Fail": "Fail",
    }
    assert nodes["Train"].depends_on == {"Preprocess"}
    assert nodes["Evaluate"].depends_on == {"Preprocess", "Train"}
    assert nodes["Gate"].depends_on == {"Evaluate"}
    assert nodes["Register"].branch == ("Gate", "if") and nodes["Fail"].branch == ("Gate", "else")
    assert run_order(nodes)[:4] == ["Preprocess", "Train", "Evaluate", "Gate"]

    steps = {s["Name"]: s for s in definition["Steps"]}
    features = steps["Preprocess"]["Arguments"]["ProcessingInputs"][0]
    athena = features["DatasetDefinition"]["AthenaDatasetDefinition"]
    assert athena["QueryString"] == spec.feature_query and athena["OutputFormat"] == "PARQUET"
    assert features["DatasetDefinition"]["LocalPath"] == "/opt/ml/processing/input/features"
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    conditions = steps["Gate"]["Arguments"]["Conditions"]
    assert [c["LeftValue"]["Std:JsonGet"]["Path"] for c in conditions] == [
        f"metrics.{g.metric}.value" for g in spec.gates
    ]
    assert [c["RightValue"] for c in conditions] == [{"Get": f"Parameters.{g.parameter}"} for g in spec.gates]
    register = steps["Gate"]["Arguments"]["IfSteps"][0]["Arguments"]
    assert register["ModelPackageGroupName"] == f"cdp-{model}"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    assert register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == {
        "Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"
    }
    assert "Std:Join" in register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    hyperparameters = steps["Train"]["Arguments"]["HyperParameters"]
    assert set(hyperparameters) == set(spec.hyperparameters)  # as parameters: test_pipelines_hyperparameters


def test_uploaded_code_is_where_the_definition_says(built):
    store, definitions = built
    steps = {s["Name"]: s for s in definitions["fraud"]["Steps"]}
    code = [i for i in steps["Preprocess"]["Arguments"]["ProcessingInputs"] if i["InputName"] == "code"][0]
    uri = code["S3Input"]["S3Uri"]
    assert uri.startswith(f"s3://{BUCKET}/cdp-fraud/code/") and uri.endswith("/preprocess.py")
    assert store.get_bytes(uri) == (SCRIPTS / "fraud" / "preprocess.py").read_bytes()
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in steps["Train"]["Arguments"]["InputDataConfig"]
    }
    assert store.get_bytes(channels["code"] + "/train.py") == (SCRIPTS / "fraud" / "train.py").read_bytes()
    assert (
        json.loads(store.get_bytes(channels["sm_drivers"] + "/sourcecode.json"))["entry_script"] == "train.py"
    )


def test_missing_step_script_is_reported_by_name(tmp_path):
    from pipelines.definition import build_definition

    (tmp_path / "preprocess.py").write_text("print('x')\n")
    with pytest.raises(FileNotFoundError, match="missing step script train.py"):
        build_definition("fraud", bucket=BUCKET, region="eu-west-1", scripts_dir=tmp_path)


STEP_SCRIPTS = sorted(
    [
        p
        for model in ("fraud", "clv", "segmentation")
        for p in (Path(__file__).resolve().parent.parent / "training" / model).glob("*.py")
    ]
    + list(SCRIPTS.glob("*/*.py"))
)


@pytest.mark.parametrize("script", [p for p in STEP_SCRIPTS if p.stem in ("preprocess", "train", "evaluate")])
def test_step_scripts_leave_without_interpreter_teardown(script):
    """Arrow's Parquet thread pool can abort (exit -6) or hang at interpreter exit after a script's outputs
    are written; every step script flushes and leaves with os._exit so a finished step cannot fail."""
    source = script.read_text()
    assert "os._exit(" in source and source.rstrip().splitlines()[-1].lstrip().startswith("os._exit("), script


INFERENCE_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdp-inference:7"


def _registered_container(definition: dict) -> tuple[dict, dict]:
    """(the Register step's inference specification, its one container)."""
    (gate,) = [s for s in definition["Steps"] if s["Name"] == "Gate"]
    (register,) = [s for s in gate["Arguments"]["IfSteps"] if s["Name"] == "Register"]
    specification = register["Arguments"]["InferenceSpecification"]
    (container,) = specification["Containers"]
    return specification, container


@pytest.mark.parametrize("model", MODELS)
def test_register_runs_the_model_in_the_projects_inference_image_when_named(model):
    from pipelines.definition import build_definition
    from tests.pipeline_support import PROCESSING_IMAGE, REGION, ROLE, TRAINING_IMAGE

    definition = build_definition(
        model, bucket=BUCKET, region=REGION, role=ROLE, scripts_dir=SCRIPTS / model,
        processing_image=PROCESSING_IMAGE, training_image=TRAINING_IMAGE, inference_image=INFERENCE_IMAGE,
    )  # fmt: skip
    specification, container = _registered_container(definition)
    assert container["Image"] == INFERENCE_IMAGE
    assert container["Environment"]["CDP_MODEL_NAME"] == f"cdp-{model}"
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert specification["SupportedContentTypes"] == ["application/json", "text/csv"]


def test_without_an_inference_image_register_keeps_the_training_image(built):
    specification, container = _registered_container(built[1]["fraud"])
    from tests.pipeline_support import TRAINING_IMAGE

    assert container["Image"] == TRAINING_IMAGE and "CDP_MODEL_NAME" not in container.get("Environment", {})
    assert specification["SupportedContentTypes"] == ["application/json"]


def test_the_inference_image_setting_reaches_get_pipeline_definition(monkeypatch, capsys):
    from cdp.settings import get_settings
    from pipelines.cli import get_pipeline_definition_main

    monkeypatch.setenv("CDP_INFERENCE_IMAGE_URI", INFERENCE_IMAGE)
    get_settings.cache_clear()
    try:
        assert (
            get_pipeline_definition_main(["--pipeline", "fraud", "--scripts-dir", str(SCRIPTS / "fraud")])
            == 0
        )
    finally:
        get_settings.cache_clear()
    _, container = _registered_container(json.loads(capsys.readouterr().out))
    assert container["Image"] == INFERENCE_IMAGE


@pytest.mark.parametrize("model", MODELS)
def test_instance_types_and_counts_are_parameters_sized_by_the_spec(built, model):
    """Every job's machine type and count are pipeline parameters defaulting to the spec's sizing; the
    distributed fraud training shards its train channel by S3 key and has Preprocess write one train file
    per host; the single-host models replicate every channel."""
    definition = built[1][model]
    sizing = spec_of(model).sizing
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert parameters["ProcessingInstanceType"]["DefaultValue"] == sizing.processing_type
    assert parameters["TrainingInstanceType"]["DefaultValue"] == sizing.training_type
    for name, default in (
        ("ProcessingInstanceCount", sizing.processing_count),
        ("TrainingInstanceCount", sizing.training_count),
    ):
        assert parameters[name] == {"Name": name, "Type": "Integer", "DefaultValue": default}
    steps = {s["Name"]: s["Arguments"] for s in definition["Steps"]}
    for name in ("Preprocess", "Evaluate"):
        assert steps[name]["ProcessingResources"]["ClusterConfig"] | {"VolumeSizeInGB": 0} == {
            "InstanceType": {"Get": "Parameters.ProcessingInstanceType"},
            "InstanceCount": {"Get": "Parameters.ProcessingInstanceCount"},
            "VolumeSizeInGB": 0,
        }
    resources = steps["Train"]["ResourceConfig"]
    assert resources["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert resources["InstanceCount"] == {"Get": "Parameters.TrainingInstanceCount"}
    channels = {c["ChannelName"]: c for c in steps["Train"]["InputDataConfig"]}
    distribution = {n: c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for n, c in channels.items()}
    sharded = spec_of(model).distributed_training
    assert distribution["train"] == ("ShardedByS3Key" if sharded else "FullyReplicated")
    assert distribution["validation"] == "FullyReplicated"
    assert channels["train"]["InputMode"] == channels["validation"]["InputMode"] == "File"
    arguments = steps["Preprocess"]["AppSpecification"].get("ContainerArguments") or []
    files = {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.TrainingInstanceCount"}]}}
    assert (arguments[-2:] == ["--files-per-split", files]) is sharded
    if model == "fraud":
        assert sharded and (sizing.processing_type, sizing.training_type) == ("ml.m5.large", "ml.m5.xlarge")
