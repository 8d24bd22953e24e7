"""Training steps in script mode: channels from S3, SM_* environment, model tarred to S3 like SageMaker.

Only `ModelTrainer(source_code=...)` jobs run locally: the definition's `sm_drivers` channel names the
entry script (`sourcecode.json`) and the `code` channel holds the source folder. The executor runs the
entry script the way SageMaker's basic script driver does (hyperparameters as `--name value`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from pipelines.local.container import ContainerRoot
from pipelines.local.context import PreparedStep, StepContext
from pipelines.local.errors import StepFailedError, UnsupportedStepError
from pipelines.local.transfer import download_prefix, folder_digest

CODE_CHANNEL = "code"
DRIVERS_CHANNEL = "sm_drivers"
HOST = "algo-1"


def hyperparameter_arguments(hyperparameters: dict[str, str]) -> list[str]:
    """`{"max_depth": "6"}` -> `["--max_depth", "6"]` (values JSON-decoded then re-encoded, as the driver)."""
    arguments: list[str] = []
    for key, raw in hyperparameters.items():
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            value = raw
        arguments += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return arguments


def _tar(folder: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)


def prepare_training(ctx: StepContext) -> PreparedStep:
    args = ctx.arguments
    root = ContainerRoot(ctx.folder / "opt_ml")
    shutil.rmtree(root.root, ignore_errors=True)
    data_dir = root.root / "input" / "data"
    channels: list[str] = []
    for channel in args.get("InputDataConfig", []):
        name = channel["ChannelName"]
        where = f"{ctx.where} channel {name!r}"
        source = channel.get("DataSource", {}).get("S3DataSource")
        if source is None or source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise UnsupportedStepError(f"{where}: only S3Prefix channels run locally")
        if channel.get("InputMode", "File") != "File":
            raise UnsupportedStepError(f"{where}: only File input mode runs locally")
        download_prefix(ctx.store, source["S3Uri"], data_dir / name, where)
        channels.append(name)
    if CODE_CHANNEL not in channels or DRIVERS_CHANNEL not in channels:
        raise UnsupportedStepError(
            f"{ctx.where}: only script-mode training (ModelTrainer with source_code) runs locally"
        )
    source_code = json.loads((data_dir / DRIVERS_CHANNEL / "sourcecode.json").read_text())
    if source_code.get("command") or not str(source_code.get("entry_script", "")).endswith(".py"):
        raise UnsupportedStepError(f"{ctx.where}: only a python entry_script runs locally")
    code_dir = data_dir / CODE_CHANNEL
    entry = code_dir / source_code["entry_script"]
    if not entry.is_file():
        raise StepFailedError(f"{ctx.where}: entry script {entry.name} is not in the code channel")
    hyperparameters = args.get("HyperParameters") or {}
    user_channels = [c for c in channels if c not in (CODE_CHANNEL, DRIVERS_CHANNEL)]

    view = copy.deepcopy(args)
    for channel in view.get("InputDataConfig", []):
        channel.get("DataSource", {}).get("S3DataSource", {}).pop("S3Uri", None)
    input_digests = {c: folder_digest(data_dir / c) for c in user_channels}
    code_parts = [folder_digest(data_dir / c) for c in (CODE_CHANNEL, DRIVERS_CHANNEL)]
    input_digests[CODE_CHANNEL] = hashlib.sha256("".join(code_parts).encode()).hexdigest()
    digest = hashlib.sha256(
        json.dumps({"arguments": view, "inputs": input_digests}, sort_keys=True).encode()
    ).hexdigest()

    def run() -> dict[str, Any]:
        model_dir, output_dir = root.root / "model", root.root / "output"
        for folder in (model_dir, output_dir / "data", root.root / "input" / "config"):
            folder.mkdir(parents=True, exist_ok=True)
        config = root.root / "input" / "config"
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "resourceconfig.json").write_text(json.dumps({"current_host": HOST, "hosts": [HOST]}))
        (config / "inputdataconfig.json").write_text(json.dumps({c: {} for c in user_channels}))
        env = {
            "TRAINING_JOB_NAME": ctx.job_name,
            "SM_MODEL_DIR": str(model_dir),
            "SM_INPUT_DIR": str(root.root / "input"),
            "SM_INPUT_DATA_DIR": str(data_dir),
            "SM_INPUT_CONFIG_DIR": str(config),
            "SM_OUTPUT_DIR": str(output_dir),
            "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
            "SM_OUTPUT_FAILURE": str(output_dir / "failure"),
            "SM_SOURCE_DIR": str(code_dir),
            "SM_ENTRY_SCRIPT": source_code["entry_script"],
            "SM_CHANNELS": json.dumps(user_channels),
            "SM_HPS": json.dumps(hyperparameters),
            "SM_CURRENT_HOST": HOST,
            "SM_HOSTS": json.dumps([HOST]),
            "SM_HOST_COUNT": "1",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            **{f"SM_CHANNEL_{c.upper()}": str(data_dir / c) for c in user_channels},
            **{f"SM_HP_{k.upper()}": str(v) for k, v in hyperparameters.items()},
        }
        command = [ctx.python, str(entry), *hyperparameter_arguments(hyperparameters)]
        ctx.run_script(command, root.environment(env), cwd=code_dir)
        if not any(model_dir.iterdir()):
            raise StepFailedError(f"{ctx.where}: the script wrote nothing to SM_MODEL_DIR")
        output_uri = f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{ctx.job_name}/output"
        archive = ctx.folder / "model.tar.gz"
        _tar(model_dir, archive)
        ctx.store.put_file(f"{output_uri}/model.tar.gz", archive)
        if any((output_dir / "data").iterdir()):
            _tar(output_dir / "data", ctx.folder / "output.tar.gz")
            ctx.store.put_file(f"{output_uri}/output.tar.gz", ctx.folder / "output.tar.gz")
        return {
            **args,
            "TrainingJobName": ctx.job_name,
            "TrainingJobArn": f"arn:aws:sagemaker:local:000000000000:training-job/{ctx.job_name}",
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"{output_uri}/model.tar.gz"},
        }

    return PreparedStep(digest=digest, run=run, input_digests=input_digests)
