"""PII scan of a candidate's registered files: nothing personal may ship inside a model.

Every file the registry holds for the version is scanned with the platform's leak scanner (card numbers
passing Luhn, e-mail addresses, card-data column names); findings name the file and where in it, never
the value. JSON files are parsed first and their keys, strings and integers scanned: the 16 decimals of a
float metric are not a card number, but a card number stored as a JSON number still is.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from cdp.compliance.leakscan import Finding, LeakScanner
from cdp.objectstore.port import SCHEME, ObjectStore
from cdp.registry.model_dir import unpack
from cdp.registry.port import ModelVersion


def artifact_findings(version: ModelVersion, object_store: ObjectStore | None) -> list[Finding]:
    """Leak-scan findings in the version's files (paths reported relative to its artifact folder)."""
    uri = version.artifacts_uri
    scratch = Path(tempfile.mkdtemp(prefix="cdp-promotion-scan-"))
    try:
        if uri.startswith(SCHEME):
            if object_store is None:
                raise FileNotFoundError("an s3:// model needs an object store")
            if uri.endswith(".tar.gz"):
                root = unpack(object_store.get_bytes(uri), scratch / "model")
            else:
                root = scratch / "model"
                for obj in object_store.list(uri.rstrip("/") + "/"):
                    target = root / obj.uri[len(uri.rstrip("/")) + 1 :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(object_store.get_bytes(obj.uri))
        else:
            path = Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)
            root = unpack(path.read_bytes(), scratch / "model") if path.name.endswith(".tar.gz") else path
        findings = scan_folder(root)
        return [Finding(_relative(f.path, root), f.where, f.kind) for f in findings]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def scan_folder(root: Path) -> list[Finding]:
    """Leak-scan every file under `root` (JSON by value, everything else as the scanner reads it)."""
    scanner = LeakScanner()
    findings: list[Finding] = []
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        if file.suffix.lower() == ".json":
            try:
                document = json.loads(file.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                findings.extend(scanner.scan_file(file))
                continue
            findings.extend(scanner.scan_text("\n".join(_json_texts(document)), str(file), "json"))
        else:
            findings.extend(scanner.scan([file]))
    return findings


def _json_texts(value: object) -> list[str]:
    """Keys, strings and integers of a JSON document (floats and booleans cannot hold personal data)."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (str(k), *_json_texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in _json_texts(v)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    return []


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name
