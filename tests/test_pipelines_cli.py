"""The console scripts: get-pipeline-definition prints the definition offline."""

from __future__ import annotations

import json

from pipelines.cli import get_pipeline_definition_main
from tests.pipeline_support import SCRIPTS


def test_get_pipeline_definition_prints_the_json(capsys):
    code = get_pipeline_definition_main(
        [
            "--pipeline",
            "segmentation",
            "--scripts-dir",
            str(SCRIPTS / "segmentation"),
            "--bucket",
            "demo-lake",
        ]
    )
    assert code == 0
    definition = json.loads(capsys.readouterr().out)
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Train", "Evaluate", "Gate"]
    train = definition["Steps"][1]["Arguments"]
    assert train["OutputDataConfig"]["S3OutputPath"] == "s3://demo-lake/pipelines/segmentation/models"
