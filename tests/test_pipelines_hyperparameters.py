"""Model hyperparameters as pipeline parameters: `max_depth` -> `MaxDepth`, typed by the spec's default.

The definitions `get-pipeline-definition` prints reference them from the Train step; the local executor
resolves them into the training script's arguments; a changed one is named as the reason Train left the
cache; an unknown name or a value of the wrong type fails in one line before any step runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from datetime import date

import pytest

from pipelines.local.errors import DefinitionError
from pipelines.local.fingerprint import changed_parts, parameter_references, step_fingerprint
from pipelines.local.graph import parse_steps
from pipelines.local.memory_advice import memory_settings
from pipelines.models import PIPELINES, spec_of
from pipelines.parameters import ParameterError, resolve_overrides
from pipelines.spec import Gate, ModelPipelineSpec, hyperparameter_parameter

PARAMETER_TYPE = {int: "Integer", float: "Float", str: "String"}


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """Each model's definition as `get-pipeline-definition --pipeline MODEL` prints it."""
    from cdp.settings import get_settings
    from pipelines.cli import get_pipeline_definition_main

    definitions = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CDP_HOME", str(tmp_path_factory.mktemp("home")))
        get_settings.cache_clear()
        for model in PIPELINES:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert get_pipeline_definition_main(["--pipeline", model]) == 0
            definitions[model] = json.loads(out.getvalue())
    get_settings.cache_clear()
    return definitions


def _train(definition: dict) -> dict:
    return next(s for s in definition["Steps"] if s["Name"] == "Train")["Arguments"]


# -- naming and types --------------------------------------------------------------------------------
def test_hyperparameter_names_become_pascal_case_parameter_names():
    assert hyperparameter_parameter("max_depth") == "MaxDepth"
    assert hyperparameter_parameter("eta") == "Eta"
    assert hyperparameter_parameter("num_round") == "NumRound"
    assert hyperparameter_parameter("n_clusters") == "NClusters"
    assert spec_of("fraud").hyperparameter_parameters == {
        "max_depth": "MaxDepth",
        "eta": "Eta",
        "num_round": "NumRound",
        "min_child_weight": "MinChildWeight",
        "seed": "Seed",
    }
    with pytest.raises(ValueError, match="snake_case"):
        hyperparameter_parameter("max-depth")


def test_a_notebook_variants_hyperparameters_map_to_the_pipeline_parameters():
    spec = spec_of("fraud")
    variant = {"max_depth": 4, "eta": 0.05, "num_round": 200, "min_child_weight": 2}
    assert spec.hyperparameter_overrides(variant) == {
        "MaxDepth": 4,
        "Eta": 0.05,
        "NumRound": 200,
        "MinChildWeight": 2,
    }
    with pytest.raises(ValueError, match=r"takes no hyperparameter 'gamma'; it takes max_depth, eta, "):
        spec.hyperparameter_overrides({"gamma": 1, "eta": 0.1})


def test_a_spec_refuses_clashing_names_and_untyped_defaults():
    gate = Gate(metric="auc", parameter="MaxDepth", threshold=0.5, comparison=">=")
    with pytest.raises(ValueError, match=r"taken twice: \['MaxDepth'\]"):
        ModelPipelineSpec("m", "d", "SELECT 1", (gate,), hyperparameters={"max_depth": 3})
    with pytest.raises(ValueError, match=r"taken twice: \['MaxDepth'\]"):
        ModelPipelineSpec("m", "d", "SELECT 1", (), hyperparameters={"max_depth": 3, "max__depth": 4})
    with pytest.raises(TypeError, match="not bool"):
        ModelPipelineSpec("m", "d", "SELECT 1", (), hyperparameters={"early_stop": True})


# -- the definitions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", PIPELINES)
def test_every_hyperparameter_is_a_typed_parameter_the_train_step_references(printed, model):
    definition, spec = printed[model], spec_of(model)
    declared = {p["Name"]: p for p in definition["Parameters"]}
    hyperparameters = _train(definition)["HyperParameters"]
    assert set(hyperparameters) == set(spec.hyperparameters)
    for name, default in spec.hyperparameters.items():
        parameter = spec.hyperparameter_parameters[name]
        assert declared[parameter] == {
            "Name": parameter,
            "Type": PARAMETER_TYPE[type(default)],
            "DefaultValue": default,
        }
        reference = {"Get": f"Parameters.{parameter}"}
        # CreateTrainingJob takes strings: numbers go through Std:Join, a String parameter as it is
        expected = reference if isinstance(default, str) else {"Std:Join": {"On": "", "Values": [reference]}}
        assert hyperparameters[name] == expected
    assert len(declared) == len(definition["Parameters"])  # no name declared twice


def test_hyperparameter_parameters_are_not_memory_advice(printed):
    """Out of memory, Train is told to change its data or machines, never MaxDepth or Eta."""
    nodes = parse_steps(printed["fraud"])
    assert {"MaxDepth", "Eta"} <= parameter_references(nodes["Train"].arguments)
    advice = memory_settings(nodes, "Train")
    assert "NegativeSampleRate" in advice and "TrainingInstanceCount" in advice
    assert not {"MaxDepth", "Eta", "NumRound", "Seed"} & set(advice)


def test_a_changed_hyperparameter_parameter_is_named_once_and_a_rebuilt_code_uri_not_at_all(printed):
    """The cache's reason for rerunning Train names `MaxDepth` (the parameter a run sets), not also the
    `max_depth` it becomes; a definition rebuilt later (new upload URI of the same code) is no change."""
    arguments = _train(printed["fraud"])
    rebuilt = json.loads(json.dumps(arguments).replace("cdp-fraud-train-2", "cdp-fraud-train-3"))
    assert rebuilt != arguments

    def fingerprint(unresolved, max_depth):
        resolved = {"HyperParameters": {"max_depth": str(max_depth), "eta": "0.1"}}
        return step_fingerprint(unresolved, resolved, {"MaxDepth": max_depth, "Eta": 0.1}, {"code": "c"})

    old, new = fingerprint(arguments, 6), fingerprint(rebuilt, 3)
    assert "parameter:MaxDepth" in old and not any(k.startswith("hyperparameter:") for k in old)
    assert changed_parts(old, new) == ["parameter MaxDepth changed (6 -> 3)"]


# -- parameter values -----------------------------------------------------------------------------------
def test_overrides_are_converted_to_their_types(printed):
    values = resolve_overrides(printed["fraud"], {"MaxDepth": "3", "Eta": 0.05, "NumRound": 40.0})
    assert (values["MaxDepth"], values["Eta"], values["NumRound"]) == (3, 0.05, 40)
    assert values["Seed"] == 7 and values["NegativeSampleRate"] == "auto"  # defaults


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MaxDepth": "deep"}, "pipeline parameter 'MaxDepth' is an Integer, got 'deep'"),
        ({"MaxDepth": 3.5}, "pipeline parameter 'MaxDepth' is an Integer, got 3.5"),
        ({"MaxDepth": True}, "pipeline parameter 'MaxDepth' is an Integer, got True"),
        ({"Eta": "fast"}, "pipeline parameter 'Eta' is a Float, got 'fast'"),
        ({"Eta": "nan"}, "pipeline parameter 'Eta' is a Float, got 'nan'"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_naming_the_parameter(printed, overrides, message):
    with pytest.raises(ParameterError) as raised:
        resolve_overrides(printed["fraud"], overrides)
    assert str(raised.value) == message


def test_an_unknown_name_is_one_line_listing_the_declared_names(printed):
    with pytest.raises(ParameterError) as raised:
        resolve_overrides(printed["fraud"], {"max_depth": 3, "MaxDepht": 3})
    message = str(raised.value)
    assert message.startswith("unknown pipeline parameters 'MaxDepht', 'max_depth'; the pipeline declares ")
    assert "\n" not in message
    listed = message.split("declares ")[1].split(", ")
    assert listed == sorted(p["Name"] for p in printed["fraud"]["Parameters"]) and "MaxDepth" in listed


def test_the_executor_refuses_a_bad_value_before_any_step(printed, tmp_path):
    from cdp.objectstore.local import FolderObjectStore
    from pipelines.local import LocalPipelineExecutor

    def refuse(*_args):
        raise AssertionError("no step may run")

    executor = LocalPipelineExecutor(
        FolderObjectStore(tmp_path / "lake", fsync=False),
        query_to_files=refuse,
        register=refuse,
        work_dir=tmp_path / "work",
    )
    with pytest.raises(DefinitionError, match=r"^pipeline parameter 'MaxDepth' is an Integer, got 'deep'$"):
        executor.run(printed["fraud"], pipeline_name="cdp-fraud", parameters={"MaxDepth": "deep"})
    with pytest.raises(DefinitionError, match=r"^unknown pipeline parameter 'Depth'; the pipeline declares"):
        executor.run(printed["fraud"], pipeline_name="cdp-fraud", parameters={"Depth": "3"})
    assert not (tmp_path / "work" / "runs").exists()


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("MaxDepht=3", "run-pipeline: unknown pipeline parameter 'MaxDepht'; the pipeline declares Eta, "),
        ("MaxDepth=deep", "run-pipeline: pipeline parameter 'MaxDepth' is an Integer, got 'deep'\n"),
    ],
)
def test_run_pipeline_local_with_a_bad_parameter_is_one_line(capsys, monkeypatch, parameter, message):
    from cdp.backends import Backends
    from cdp.settings import Settings, get_settings
    from pipelines.cli import run_pipeline_main
    from tests.identity_support import issue

    monkeypatch.setenv("CDP_IDENTITY_FILE", str(issue(Backends(Settings()), "ds-1", "data-scientist")))
    get_settings.cache_clear()
    assert run_pipeline_main(["--pipeline", "fraud", "--local", "--parameter", parameter]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err + captured.out
    assert not (Settings().state_dir / "pipelines" / "runs").exists()


# -- a variant through the real fraud pipeline ----------------------------------------------------------
def _booster(store, record):
    """The registered booster of a run and its features.json document."""
    import xgboost as xgb

    uri = record.step("Train").properties["ModelArtifacts"]["S3ModelArtifacts"]
    with tarfile.open(fileobj=io.BytesIO(store.get_bytes(uri))) as tar:
        booster = xgb.Booster()
        booster.load_model(bytearray(tar.extractfile("model.ubj").read()))
        document = json.load(tar.extractfile("features.json"))
    return booster, document


def _deepest_split_level(booster) -> int:
    """How many levels of splits the deepest tree has (a tree of max_depth d has at most d)."""

    def levels(node: dict) -> int:
        children = node.get("children") or []
        return 0 if not children else 1 + max(levels(child) for child in children)

    return max(levels(json.loads(tree)) for tree in booster.get_dump(dump_format="json"))


@pytest.mark.slow
def test_a_variants_max_depth_goes_through_the_fraud_pipeline(tmp_path):
    from bench.bench_models import fraud_training_set, load_lake, register_training_set
    from cdp.backends import Backends
    from cdp.settings import Settings
    from cdp.synth.generator import generate
    from pipelines.definition import build_definition
    from pipelines.local import LocalPipelineExecutor
    from pipelines.spec import TRAINING_DIR
    from tests.pipeline_support import PROCESSING_IMAGE, REGION, ROLE, TRAINING_IMAGE, RecordingRegistry

    generate(tmp_path / "ibm", users=30, seed=11, start=date(2015, 1, 1), workers=1)
    backends = Backends(Settings(home=tmp_path / "home"))
    load_lake(tmp_path / "ibm", backends)
    register_training_set(backends, fraud_training_set(backends))
    definition = build_definition(
        "fraud",
        bucket=backends.settings.lake_bucket,
        region=REGION,
        role=ROLE,
        scripts_dir=TRAINING_DIR / "fraud",
        object_store=backends.object_store,
        processing_image=PROCESSING_IMAGE,
        training_image=TRAINING_IMAGE,
    )
    lines: list[str] = []
    executor = LocalPipelineExecutor(
        backends.object_store,
        query_to_files=backends.catalog.query_to_files,
        register=RecordingRegistry().register,
        work_dir=tmp_path / "work",
        progress=lines.append,
    )
    base = executor.run(definition, pipeline_name="cdp-fraud", parameters={"NumRound": 120})
    variant = executor.run(
        definition, pipeline_name="cdp-fraud", parameters={"NumRound": "120", "MaxDepth": "3", "Eta": 0.3}
    )
    assert base.status == variant.status == "Succeeded", (base.failure_reason, variant.failure_reason)

    booster, document = _booster(backends.object_store, variant)
    assert document["hyperparameters"]["max_depth"] == 3 and document["hyperparameters"]["eta"] == 0.3
    assert document["hyperparameters"]["num_round"] == 120
    # the trees themselves (xgboost's saved config does not keep max_depth): the default grows deeper
    assert _deepest_split_level(booster) <= 3
    assert _deepest_split_level(_booster(backends.object_store, base)[0]) > 3

    # Preprocess reads nothing the hyperparameters change: from the cache; Train re-ran, saying why
    assert variant.step("Preprocess").cache_hit is True and variant.step("Train").cache_hit is False
    reason = variant.step("Train").cache_miss_reason
    changed = "parameter Eta changed (0.1 -> 0.3), parameter MaxDepth changed (6 -> 3)"
    assert reason == f"{changed} (vs run {base.execution_id})"
    assert f"Train: not from the cache: {reason}" in lines
