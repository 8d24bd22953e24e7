"""Property-based fuzzing of the inference app against its own OpenAPI document (schemathesis, in-process).

Every operation of `/openapi.json` gets a bounded number of generated requests (schemathesis' positive
and negative generation: valid and invalid bodies and paths) sent through ASGI with an API key holding
every scope. Each response must not be a server error, must use a status code the document declares for
the operation, a declared content type, and a body that conforms to the declared schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_inference_app import auth, make_app
from tests.test_inference_app import platform as platform  # noqa: F401 - the module-scoped fixture

EXAMPLES_PER_OPERATION = 30  # valid and invalid requests together, per operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(platform):  # noqa: ANN001, ANN201, F811 - the platform fixture imported above
    """The app's OpenAPI schema, loaded through ASGI from the running app (champions loaded)."""
    app = make_app(platform)
    app.state.serving.start()  # the ASGI transport does not run the lifespan
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.serving.stop()


# `schemathesis.pytest.from_fixture` needs a private pytest attribute that pytest 9 removed: the operations
# are parametrized here, and each test runs Hypothesis over the operation's strategy itself.
OPERATIONS = [
    ("GET", "/ping"),
    ("POST", "/invocations"),
    ("POST", "/v1/fraud/score"),
    ("POST", "/v1/fraud/score:batch"),
    ("GET", "/v1/customers/{token}/profile"),
    ("GET", "/v1/models"),
    ("POST", "/v1/models/reload"),
]


def test_the_fuzzed_operations_are_every_operation_of_the_document(api_schema) -> None:  # noqa: ANN001
    found = {(r.ok().method.upper(), r.ok().path) for r in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_within_its_documented_contract(api_schema, platform, method, path):  # noqa: ANN001, F811
    operation = api_schema[path][method]
    headers = auth(platform.keys["all"])
    seen: list[int] = []

    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,  # the same examples every run
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case) -> None:  # noqa: ANN001
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen.append(response.status_code)

    run()
    print(method, path, sorted(set(seen)))
    assert seen  # the operation was really exercised
