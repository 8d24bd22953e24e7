"""The inference image without Docker: the Dockerfile read as stages and instructions, the SBOM generator
run on this environment and checked against what CycloneDX 1.5 requires, and the serving code's imports
limited to the packages the image copies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest

from inference.container.sbom import build_sbom, main, normalise

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "inference" / "Dockerfile"
IGNORE = REPO / "inference" / "Dockerfile.dockerignore"
LOCK_PYTHON = "3.11"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3?-dev|libc6?-dev)\b")

SERIAL = "^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# What CycloneDX 1.5 requires of the fields we write (from its JSON schema: bom-1.5.schema.json).
CYCLONEDX_15 = {
    "type": "object",
    "required": ["bomFormat", "specVersion"],
    "properties": {
        "bomFormat": {"const": "CycloneDX"},
        "specVersion": {"const": "1.5"},
        "serialNumber": {"type": "string", "pattern": SERIAL},
        "version": {"type": "integer", "minimum": 1},
        "metadata": {
            "type": "object",
            "properties": {
                "timestamp": {"type": "string", "format": "date-time"},
                "component": {"$ref": "#/definitions/component"},
                "tools": {
                    "type": "object",
                    "properties": {
                        "components": {"type": "array", "items": {"$ref": "#/definitions/component"}}
                    },
                },
            },
        },
        "components": {"type": "array", "items": {"$ref": "#/definitions/component"}},
        "dependencies": {
            "type": "array",
            "uniqueItems": True,
            "items": {
                "type": "object",
                "required": ["ref"],
                "additionalProperties": False,
                "properties": {
                    "ref": {"type": "string", "minLength": 1},
                    "dependsOn": {
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"type": "string", "minLength": 1},
                    },
                },
            },
        },
    },
    "definitions": {
        "component": {
            "type": "object",
            "required": ["type", "name"],
            "properties": {
                "type": {
                    "enum": [
                        "application",
                        "framework",
                        "library",
                        "container",
                        "platform",
                        "operating-system",
                        "device",
                        "device-driver",
                        "firmware",
                        "file",
                        "machine-learning-model",
                        "data",
                    ]
                },
                "name": {"type": "string"},
                "version": {"type": "string"},
                "bom-ref": {"type": "string", "minLength": 1},
                "purl": {"type": "string"},
                "licenses": {
                    "oneOf": [
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["license"],
                                "properties": {
                                    "license": {
                                        "type": "object",
                                        "oneOf": [{"required": ["id"]}, {"required": ["name"]}],
                                    }
                                },
                            },
                        },
                        {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 1,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["expression"],
                                "properties": {"expression": {"type": "string"}},
                            },
                        },
                    ]
                },
            },
        }
    },
}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages in order): continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        current += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = rest.split()
            stages.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        elif stages:
            stages[-1].instructions.append((instruction, rest.strip()))
        elif instruction == "ARG":
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
    return args, stages


@pytest.fixture(scope="module")
def dockerfile():
    return parse_dockerfile(DOCKERFILE.read_text())


def _stage(stages: list[Stage], name: str) -> Stage:
    return next(s for s in stages if s.name == name)


def _lineage(stages: list[Stage], stage: Stage) -> list[Stage]:
    """The stage and the stages it is built FROM, up to the base image."""
    chain = [stage]
    while any(s.name == chain[-1].base for s in stages):
        chain.append(_stage(stages, chain[-1].base))
    return chain


def test_the_final_stage_runs_serve_as_a_non_root_user(dockerfile):
    args, stages = dockerfile
    final = stages[-1]  # the default target of `docker build`
    chain = _lineage(stages, final)
    users = [u for s in reversed(chain) for u in s.args("USER")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert all(int(part) >= 1000 for part in users[-1].split(":") if part.isdigit())
    command = [c for s in reversed(chain) for c in s.args("CMD")][-1]
    assert json.loads(command) == ["serve"] and not any(s.args("ENTRYPOINT") for s in chain)
    env = " ".join(e for s in chain for e in s.args("ENV"))
    assert "PATH=/opt/venv/bin" in env  # `serve` is found on PATH: `docker run <image> serve`
    assert "8080" in " ".join(final.args("EXPOSE"))


def test_the_base_is_a_slim_python_of_the_locks_version(dockerfile):
    args, stages = dockerfile
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(rf"python:{re.escape(LOCK_PYTHON)}-slim(-[a-z]+)?", base)
    lock_header = (REPO / "requirements.lock").read_text().splitlines()[1]
    assert f"--python-version {LOCK_PYTHON}" in lock_header
    assert all(s.base in ("${PYTHON_IMAGE}", "scratch") or s.base in {t.name for t in stages} for s in stages)
    assert len([s for s in stages if s.base == "${PYTHON_IMAGE}"]) >= 2  # multi-stage: build apart


def test_packages_install_from_the_lock_with_hashes_and_no_build_tools_reach_the_image(dockerfile):
    _, stages = dockerfile
    build = _stage(stages, "build")
    installs = [r for r in build.args("RUN") if "pip install" in r]
    assert installs and all("--require-hashes" in r and "requirements.lock" in r for r in installs)
    final_chain = _lineage(stages, stages[-1])
    for stage in final_chain:
        for instruction, arguments in stage.instructions:
            if instruction == "RUN":
                assert not BUILD_TOOLS.search(arguments), arguments
                assert "apt-get install" not in arguments and "pip install" not in arguments
    runtime_runs = " ".join(_stage(stages, "runtime").args("RUN"))
    assert "site-packages/pip" in runtime_runs and "chmod a-s" in runtime_runs  # no pip, no setuid


def test_the_sbom_is_built_in_the_image_and_extractable(dockerfile):
    _, stages = dockerfile
    runtime = _stage(stages, "runtime")
    assert any(
        "inference.container.sbom --output /usr/share/cdp/sbom.cdx.json" in r for r in runtime.args("RUN")
    )
    sbom = _stage(stages, "sbom")
    assert sbom.base == "scratch" and sbom.args("COPY") == [
        "--from=runtime /usr/share/cdp/sbom.cdx.json /sbom.cdx.json"
    ]


def test_the_build_context_holds_only_what_the_image_copies(dockerfile):
    _, stages = dockerfile
    copied = {a.split()[0] for s in stages for a in s.args("COPY") if not a.startswith("--from")}
    allowed = {
        line.removeprefix("!").rstrip("/") for line in IGNORE.read_text().splitlines() if line.startswith("!")
    }
    assert copied == allowed
    assert IGNORE.read_text().splitlines()[1] == "*"  # everything else (.git, .venv, tests, data) stays out


def test_serving_imports_only_the_packages_the_image_copies():
    """The entry point, the container app and the SBOM tool load no project package the image lacks."""
    code = (
        "import sys, inference.container.serve, inference.container.app, inference.container.sbom;"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = set(json.loads(out.stdout.strip().replace("'", '"')))
    assert {"inference", "cdp"} <= loaded
    assert not loaded & {"app", "pipelines", "monitoring", "infra", "bench", "tests", "sagemaker", "mlflow"}


def test_the_sbom_lists_this_environment_as_cyclonedx_15(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out = tmp_path / "sbom" / "sbom.cdx.json"
    assert main(["--output", str(out), "--name", "cdp-inference", "--version", "1.2.3"]) == 0
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, CYCLONEDX_15, format_checker=jsonschema.FormatChecker())
    assert doc["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert doc["metadata"]["component"] == {
        "type": "container", "bom-ref": "cdp-inference@1.2.3", "name": "cdp-inference", "version": "1.2.3"
    }  # fmt: skip
    by_name = {normalise(c["name"]): c for c in doc["components"]}
    for name in ("fastapi", "uvicorn", "xgboost-cpu", "numpy", "pandas"):
        assert by_name[name]["version"] == metadata.version(name)
        assert by_name[name]["purl"] == f"pkg:pypi/{name}@{metadata.version(name)}"
    refs = [c["bom-ref"] for c in doc["components"]]
    assert (
        len(refs) == len(set(refs)) == len({normalise(d.metadata["Name"]) for d in metadata.distributions()})
    )
    known = {*refs, doc["metadata"]["component"]["bom-ref"]}
    assert all(d["ref"] in known and set(d["dependsOn"]) <= known for d in doc["dependencies"])
    fastapi = next(d for d in doc["dependencies"] if d["ref"] == by_name["fastapi"]["bom-ref"])
    assert by_name["starlette"]["bom-ref"] in fastapi["dependsOn"]
    assert build_sbom("cdp-inference", "1.2.3")["serialNumber"] == doc["serialNumber"]  # same env, same id
    assert any("licenses" in c for c in doc["components"])
