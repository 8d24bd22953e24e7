"""Where the platform's source data came from, as a model card states it.

The generator writes `ground_truth/manifest.json` beside the files it generates (`cdp generate`): when it is
there, the data is synthetic and the manifest says how it was made. Files dropped in instead carry no such
record; `CDP_SOURCE_DATA_SYNTHETIC` declares them (true for IBM's public synthetic set, false for a
bank's own extract); undeclared, the card says the origin is not known.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cdp.synth.ground_truth import MANIFEST_FILE

if TYPE_CHECKING:
    from cdp.settings import Settings

SYNTHETIC = "trained on synthetic data"


def training_data_origin(settings: Settings) -> dict[str, Any]:
    """`{"origin", "synthetic" (True/False/None), "statement", ...}`: no personal data, no paths."""
    manifest = settings.ground_truth_dir / MANIFEST_FILE
    if manifest.is_file():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            doc = {}
        users = doc.get("users")
        return {
            "origin": "generated",
            "synthetic": True,
            "generator_version": doc.get("generator_version"),
            "seed": doc.get("seed"),
            "users": users,
            "statement": f"{SYNTHETIC.capitalize()}: written by the platform's generator (`cdp generate`, "
            f"version {doc.get('generator_version', '?')}, seed {doc.get('seed', '?')}, {users or '?'} "
            "users) in the IBM credit-card format; no real customer is in it.",
        }
    declared = getattr(settings, "source_data_synthetic", None)
    if declared is True:
        return {
            "origin": "declared synthetic",
            "synthetic": True,
            "statement": f"{SYNTHETIC.capitalize()}: IBM-format source files declared synthetic "
            "(CDP_SOURCE_DATA_SYNTHETIC), such as IBM's public synthetic credit-card data set.",
        }
    if declared is False:
        return {
            "origin": "declared real",
            "synthetic": False,
            "statement": "Trained on real customer data: IBM-format source files declared real "
            "(CDP_SOURCE_DATA_SYNTHETIC=false), protected in the lake (tokens, bands, no direct identifier).",
        }
    return {
        "origin": "not declared",
        "synthetic": None,
        "statement": "Trained on IBM-format source files of undeclared origin (not generated here; set "
        "CDP_SOURCE_DATA_SYNTHETIC to state whether they are synthetic).",
    }
