"""A CycloneDX 1.5 SBOM (JSON) of a Python environment: every installed distribution, from its metadata.

`python -m inference.container.sbom --output sbom.cdx.json` runs in the image's final stage, so the SBOM
lists exactly what the image's interpreter can import: name, version, package URL, licence and the
dependencies between the installed distributions (from `Requires-Dist`, markers evaluated for this
environment). `SOURCE_DATE_EPOCH` fixes the timestamp; the serial number is derived from the content, so
the same environment gives the same document.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

SPEC_VERSION = "1.5"
TOOL_NAME = "cdp-sbom"
_LICENSE_CLASSIFIER = "License :: "


def normalise(name: str) -> str:
    """A distribution name as PEP 503 (and the pypi package URL type) normalise it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def purl(name: str, version: str) -> str:
    return f"pkg:pypi/{normalise(name)}@{version}"


def _licenses(meta: metadata.PackageMetadata) -> list[dict[str, Any]]:
    """The distribution's declared licence: its expression, else its classifiers, else its short text."""
    expression = (meta.get("License-Expression") or "").strip()
    if expression:  # PEP 639: an SPDX expression
        return [{"expression": expression}]
    classifiers = [
        c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith(_LICENSE_CLASSIFIER)
    ]
    names = [c for c in classifiers if c not in ("OSI Approved",)]
    if names:
        return [{"license": {"name": n}} for n in dict.fromkeys(names)]
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 100:
        return [{"license": {"name": text}}]
    return []


def _requirements(dist: metadata.Distribution) -> list[str]:
    """Normalised names of the distribution's requirements that apply here (no extras)."""
    from packaging.requirements import InvalidRequirement, Requirement

    names = []
    for line in dist.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        names.append(normalise(requirement.name))
    return names


def _distributions(paths: Sequence[str] | None) -> list[metadata.Distribution]:
    """Installed distributions on `paths` (default: `sys.path`), the first of each name, sorted by name."""
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions(path=list(paths) if paths is not None else sys.path):
        name = dist.metadata.get("Name")
        if name and normalise(name) not in found:
            found[normalise(name)] = dist
    return [found[n] for n in sorted(found)]


def _timestamp() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    moment = datetime.fromtimestamp(int(epoch), UTC) if epoch.isdigit() else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_sbom(
    name: str, version: str, *, distributions: Iterable[metadata.Distribution] | None = None
) -> dict[str, Any]:
    """The CycloneDX 1.5 document of `distributions` (default: this interpreter's environment), its
    subject (`metadata.component`) the application `name` `version`."""
    dists = list(distributions) if distributions is not None else _distributions(None)
    components, dependencies, refs = [], [], {}
    for dist in dists:
        meta = dist.metadata
        ref = purl(meta["Name"], dist.version)
        refs[normalise(meta["Name"])] = ref
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": ref,
            "name": meta["Name"],
            "version": dist.version,
            "purl": ref,
        }
        licenses = _licenses(meta)
        if licenses:
            component["licenses"] = licenses
        components.append(component)
    for dist in dists:
        ref = refs[normalise(dist.metadata["Name"])]
        needs = sorted({refs[n] for n in _requirements(dist) if n in refs and refs[n] != ref})
        dependencies.append({"ref": ref, "dependsOn": needs})
    root = f"{normalise(name)}@{version}"
    dependencies.insert(0, {"ref": root, "dependsOn": sorted(refs.values())})
    content = json.dumps([root, components], sort_keys=True).encode()
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, hashlib.sha256(content).hexdigest())}",
        "version": 1,
        "metadata": {
            "timestamp": _timestamp(),
            "tools": {"components": [{"type": "application", "name": TOOL_NAME, "version": "1"}]},
            "component": {"type": "container", "bom-ref": root, "name": name, "version": version},
        },
        "components": components,
        "dependencies": dependencies,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sbom", description="Write a CycloneDX 1.5 SBOM of this environment."
    )
    parser.add_argument("--output", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--name", default="cdp-inference", help="the SBOM's subject (the image)")
    parser.add_argument("--version", default="0.1.0", help="the subject's version")
    args = parser.parse_args(argv)
    document = build_sbom(args.name, args.version)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"sbom: {len(document['components'])} components -> {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
