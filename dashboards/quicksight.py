"""The QuickSight side of the dashboards in AWS, as a definition to deploy: one Athena data source (the
platform's workgroup) and one SPICE dataset per aggregate table of the Glue database, each shared only
with the QuickSight group of the page that reads it (fraud-ops, marketing, ml-engineers), as the app's
sign-in does. `python -m dashboards.quicksight` prints it; `dashboards/quicksight.json` is the committed
copy (a test holds the two equal and the columns equal to what the aggregates produce).

The request bodies are those of QuickSight's CreateDataSource and CreateDataSet APIs (account, region and
principals as CloudFormation substitutions, for the CDK app to fill). The data source queries Athena as its
own role (`QUICKSIGHT_ROLE`, not QuickSight's account-wide service role): the CDK app's data plane stack
builds the data source, the datasets and that role from this definition (`infra.quicksight`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cdp.aws_resources import ATHENA_WORKGROUP, GLUE_DATABASE

DEFINITION_FILE = Path(__file__).with_name("quicksight.json")
DATA_SOURCE_ID = "cdp-athena"
QUICKSIGHT_ROLE = "cdp-quicksight-athena"  # the data source's role: the workgroup, dashboards/ and the key
GROUPS = {"fraud": "fraud-ops", "customers": "marketing", "models": "ml-engineers"}
_S, _I, _D, _T, _B = "STRING", "INTEGER", "DECIMAL", "DATETIME", "BOOLEAN"
_FRAUD_SUMS = [("transactions", _I), ("frauds", _I), ("amount_cents", _I), ("fraud_amount_cents", _I)]

# table -> (page, columns with their QuickSight input types)
DATASETS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "dash_fraud_daily": ("fraud", [("day", _T), ("channel", _S), *_FRAUD_SUMS]),
    "dash_fraud_by_mcc": ("fraud", [("month", _T), ("channel", _S), ("mcc", _I), *_FRAUD_SUMS]),
    "dash_fraud_by_state": ("fraud", [("month", _T), ("channel", _S), ("state", _S), *_FRAUD_SUMS]),
    "dash_fraud_by_hour": ("fraud", [("month", _T), ("channel", _S), ("hour", _I), *_FRAUD_SUMS]),
    "dash_alerts_daily": (
        "fraud",
        [("day", _T), ("model", _S), ("model_version", _I), ("scored", _I), ("alerts", _I),
         ("true_alerts", _I), ("frauds", _I), ("labelled", _I)],
    ),
    "dash_reason_codes": (
        "fraud", [("month", _T), ("model_version", _I), ("reason_rank", _I), ("feature", _S), ("alerts", _I)]
    ),
    "dash_freshness": (
        "fraud",
        [("table_name", _S), ("row_count", _I), ("first_event", _T), ("last_event", _T),
         ("last_scored_at", _T), ("refreshed_at", _T)],
    ),
    "dash_segments": (
        "customers",
        [("segment_name", _S), ("customers", _I), ("share", _D), ("clv_mean_cents", _D),
         ("clv_median_cents", _D)],
    ),
    "dash_clv_bands": (
        "customers",
        [("band_order", _I), ("band", _S), ("customers", _I), ("clv_total_cents", _D), ("suppressed", _B)],
    ),
    "dash_segment_clv": (
        "customers",
        [("segment_name", _S), ("band_order", _I), ("band", _S), ("customers", _I), ("suppressed", _B)],
    ),
    "dash_model_versions": (
        "models",
        [("model_name", _S), ("version", _I), ("status", _S), ("is_champion", _B), ("created_at", _T),
         ("status_reason", _S), ("registered_by", _S), ("pipeline_run_id", _S)],
    ),
    "dash_monitor_metrics": ("models", [("model_name", _S), ("metric", _S), ("at", _T), ("value", _D)]),
    "dash_alarm_history": (
        "models",
        [("alarm_name", _S), ("model_name", _S), ("metric", _S), ("threshold", _D), ("state", _S),
         ("observed_at", _T)],
    ),
    "dash_quarantine": ("models", [("source", _S), ("file", _S), ("reason", _S), ("row_count", _I)]),
}  # fmt: skip

_READ_ACTIONS = [
    "quicksight:DescribeDataSet", "quicksight:DescribeDataSetPermissions", "quicksight:PassDataSet",
    "quicksight:DescribeIngestion", "quicksight:ListIngestions",
]  # fmt: skip


def _group_arn(group: str) -> str:
    return f"arn:aws:quicksight:${{AWS::Region}}:${{AWS::AccountId}}:group/default/{group}"


def definition(database: str = GLUE_DATABASE, workgroup: str = ATHENA_WORKGROUP) -> dict[str, Any]:
    """The data source and datasets (QuickSight API request bodies, without the account id field)."""
    source_arn = f"arn:aws:quicksight:${{AWS::Region}}:${{AWS::AccountId}}:datasource/{DATA_SOURCE_ID}"
    datasets = []
    for table, (page, columns) in DATASETS.items():
        table_id = table.replace("_", "-")  # map keys and ids: letters, digits and '-' only
        datasets.append(
            {
                "DataSetId": f"cdp-{table_id}",
                "Name": table,
                "ImportMode": "SPICE",
                "PhysicalTableMap": {
                    table_id: {
                        "RelationalTable": {
                            "DataSourceArn": source_arn,
                            "Catalog": "AwsDataCatalog",
                            "Schema": database,
                            "Name": table,
                            "InputColumns": [{"Name": n, "Type": t} for n, t in columns],
                        }
                    }
                },
                "Permissions": [{"Principal": _group_arn(GROUPS[page]), "Actions": _READ_ACTIONS}],
                "Tags": [{"Key": "cdp:page", "Value": page}],
            }
        )
    return {
        "DataSource": {
            "DataSourceId": DATA_SOURCE_ID,
            "Name": "CDP lake (Athena)",
            "Type": "ATHENA",
            "DataSourceParameters": {
                "AthenaParameters": {
                    "WorkGroup": workgroup,
                    "RoleArn": f"arn:aws:iam::${{AWS::AccountId}}:role/{QUICKSIGHT_ROLE}",
                }
            },
            "SslProperties": {"DisableSsl": False},
        },
        "DataSets": datasets,
    }


def definition_json() -> str:
    return json.dumps(definition(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(definition_json())
