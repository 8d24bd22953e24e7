"""Stateful fuzzing of the public API: schemathesis' state machine over the app's own OpenAPI document,
with OpenAPI links chaining the calls a client makes in turn.

The links (added to a copy of the document the app serves here, the API's own document carries none):
a score (one or a batch) -> the scored customer's profile (`user_token` taken from the request) ->
the models served -> a forced reload (profiles rebuilt in the background while the next calls run).
Sequences start at a score, a batch or the models list. Every step must answer within
its documented contract: no 5xx, a declared status code and content type, a body that conforms to the
declared schema, and a score's decision that agrees with its own threshold.

The generated transactions name the platform's own cards and customers and are dated inside the
accepted window (the copy narrows those three fields), so the chains reach the scores and profiles of
real state rather than 404s and 422s: arbitrary tokens and dates are the stateless suite's job
(tests/test_inference_fuzz.py).
"""

from __future__ import annotations

import copy
import re
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_inference_app import Platform, auth, make_app
from tests.test_inference_app import platform as platform  # noqa: F401 - the module-scoped fixture

SCENARIOS = 20  # sequences of calls (Hypothesis examples): 8 s on idle cores, 30-45 s on busy ones
STEPS = 10  # calls per sequence at most
TIME_BUDGET_SECONDS = 150.0  # a runaway guard, far above the run time even on a loaded machine
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# dates inside the default accepted window (1990-01-01 .. now + 1 day), without a time-zone offset
TS_IN_WINDOW = (
    r"^(199[0-9]|20[01][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
)
INTEGER_FIELDS = frozenset({"amount_cents", "merchant_id", "mcc"})
SCORE = ("/v1/fraud/score", "post")
BATCH = ("/v1/fraud/score:batch", "post")
PROFILE = ("/v1/customers/{token}/profile", "get")
MODELS = ("/v1/models", "get")
RELOAD = ("/v1/models/reload", "post")


def _operation_id(document: dict, where: tuple[str, str]) -> str:
    path, method = where
    return document["paths"][path][method]["operationId"]


def _link(
    document: dict, source: tuple[str, str], name: str, target: tuple[str, str], **parameters: str
) -> None:
    """Add an OpenAPI link from `source`'s 200 response to `target` (parameters: runtime expressions)."""
    path, method = source
    response = document["paths"][path][method]["responses"]["200"]
    link = {"operationId": _operation_id(document, target)}
    if parameters:
        link["parameters"] = parameters
    response.setdefault("links", {})[name] = link


def linked_document(served: dict, platform: Platform) -> dict:  # noqa: F811 - the fixture's type
    """A copy of the app's document with the links of a client's workflow, its transactions narrowed to
    the platform's cards and customers and to dates inside the accepted window."""
    document = copy.deepcopy(served)
    fields = document["components"]["schemas"]["Transaction"]["properties"]
    fields["card_token"] = {"type": "string", "enum": sorted(platform.cards)}
    fields["user_token"] = {"type": "string", "enum": sorted(set(platform.users.values()))}
    fields["ts"] = {"type": "string", "pattern": TS_IN_WINDOW}
    _link(document, SCORE, "ScoredCustomerProfile", PROFILE, token="$request.body#/transaction/user_token")
    _link(document, BATCH, "FirstCustomerProfile", PROFILE, token="$request.body#/transactions/0/user_token")
    _link(document, PROFILE, "ModelsServed", MODELS)
    _link(document, MODELS, "ForceReload", RELOAD)
    return document


def as_json_integers(body: object) -> object:
    """The body with the transactions' whole numbers sent as JSON integers.

    JSON Schema counts `821.0` as an `integer`, so schemathesis sends such values half the time; the API
    refuses them by design (strict inputs, see `inference.schemas`) and the stateless suite covers that
    422. Here they would only cut the chains short."""
    if isinstance(body, list):
        return [as_json_integers(item) for item in body]
    if not isinstance(body, dict):
        return body
    return {
        name: int(value)
        if name in INTEGER_FIELDS and isinstance(value, float) and value.is_integer() and abs(value) < 2**63
        else as_json_integers(value)
        for name, value in body.items()
    }


def decision_agrees_with_threshold(ctx, response, case) -> bool | None:  # noqa: ANN001 - schemathesis' check
    """A 200 score says `alert` exactly when its probability reaches its threshold."""
    if response.status_code != 200 or case.operation.path not in (SCORE[0], BATCH[0]):
        return None
    body = response.json()
    for score in body["scores"] if "scores" in body else [body]:
        expected = "alert" if score["probability"] >= score["threshold"] else "pass"
        assert score["decision"] == expected, (score["probability"], score["threshold"], score["decision"])
    return True


@pytest.fixture(scope="module")
def workflow(platform):  # noqa: ANN001, ANN201, F811 - the platform fixture imported above
    """The state machine class over the running app (champions loaded), and the statuses it met."""
    key = platform.keys["all"]
    app = make_app(platform, rate_per_second=100_000.0, rate_burst=100_000)
    app.state.serving.start()  # the ASGI transport does not run the lifespan
    app.openapi_schema = linked_document(app.openapi(), platform)  # what /openapi.json serves
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    seen: Counter[tuple[str, int]] = Counter()

    class Workflow(schema.as_state_machine()):
        def before_call(self, case) -> None:  # noqa: ANN001
            case.body = as_json_integers(case.body)

        def get_call_kwargs(self, case) -> dict:  # noqa: ANN001
            return {"headers": auth(key)}

        def after_call(self, response, case) -> None:  # noqa: ANN001
            seen[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:  # noqa: ANN001
            case.validate_response(
                response,
                checks=CHECKS,
                additional_checks=[decision_agrees_with_threshold],
                transport_kwargs=kwargs,
            )

    yield Workflow, seen
    app.state.serving.stop()


@pytest.mark.slow
def test_chained_calls_never_fail_the_server_nor_the_contract(workflow) -> None:  # noqa: ANN001
    machine, seen = workflow
    started = time.monotonic()
    machine.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            derandomize=True,  # the same sequences every run
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    elapsed = time.monotonic() - started
    print(f"{elapsed:.1f} s", sorted(seen.items()))
    assert elapsed < TIME_BUDGET_SECONDS
    assert not any(status >= 500 for _, status in seen)
    # the links were followed: profiles exist only for the tokens a score's request carried
    assert seen[("GET /v1/customers/{token}/profile", 200)] > 0
    assert seen[("POST /v1/fraud/score", 200)] + seen[("POST /v1/fraud/score:batch", 200)] > 0
    assert seen[("POST /v1/models/reload", 200)] > 0


def test_documented_local_times_are_those_the_api_reads_and_serves(platform) -> None:  # noqa: ANN001, F811
    """Found by the chains above: the document called `ts` and `as_of` RFC 3339 `date-time`s (always with
    an offset), while the API refuses an offset in `ts` and serves `as_of` without one."""
    from fastapi.testclient import TestClient

    with TestClient(make_app(platform)) as client:
        document = client.get("/openapi.json").json()
        served = client.get(
            f"/v1/customers/{platform.profiled_users[0]}/profile", headers=auth(platform.keys["all"])
        )
    fields = document["components"]["schemas"]
    ts = fields["Transaction"]["properties"]["ts"]
    as_of = fields["CustomerProfile"]["properties"]["as_of"]
    assert "format" not in ts and "format" not in as_of
    assert re.match(ts["pattern"], "2019-02-01T12:00:00") and re.match(ts["pattern"], "2019-02-01 12:00")
    assert not re.match(ts["pattern"], "2019-02-01T12:00:00Z")
    assert not re.match(ts["pattern"], "2019-02-01T12:00:00+01:00")
    assert served.status_code == 200
    assert re.match(as_of["pattern"], served.json()["as_of"])
