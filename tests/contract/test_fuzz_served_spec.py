"""Fuzz the served OpenAPI document with schemathesis, in-process against the WSGI app.

Every operation, positive and negative generation, a fixed seed: 0 server errors and 0 schema
violations accepted (negative data must be refused with a 4xx). Upstreams are the bundled
sandbox, reached in-process through `responses`, so nothing leaves the machine.

CI runs a modest number of examples per operation; a longer run by hand:

    BEATRA_FUZZ_EXAMPLES=500 .venv/bin/python -m pytest -q tests/contract/test_fuzz_served_spec.py

(BEATRA_FUZZ_SEED picks another seed.)
"""

from __future__ import annotations

import os
import re
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from beatra.sandbox.app import create_sandbox_app

SANDBOX = "http://sandbox.test"
EXAMPLES = int(os.environ.get("BEATRA_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("BEATRA_FUZZ_SEED", "11"))
SERVER_ERRORS: list[str] = []
PINNED_MODELS = {"/v1/chat/completions": "gpt-4o-mini"}
# Operations that must do real work (2xx) on some positive case, so the run is known to reach
# past auth and validation into billing, routing and the sandbox upstream. (Chat bodies are
# generated too freely to pass the server's finer rules at this example count: an empty
# `messages`, a non-ASCII Idempotency-Key, a number past 2^63; they exercise validation.)
MUST_SUCCEED = {"GET /v1/health", "GET /v1/models", "GET /v1/tasks",
                "POST /v1/images/generations", "POST /v1/music/text-to-music",
                "POST /v1/uploads"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


def _forward(sandbox: Any) -> Any:
    client = sandbox.test_client()

    def call(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        path = request.url.removeprefix(SANDBOX)  # type: ignore[union-attr]
        resp = client.open(path, method=request.method, data=request.body,
                           headers=dict(request.headers))
        headers = {k: v for k, v in resp.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding")}
        return resp.status_code, headers, resp.get_data()

    return call


@pytest.fixture
def sandbox_upstream() -> Iterator[responses.RequestsMock]:
    forward = _forward(create_sandbox_app())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in ("GET", "POST", "PUT", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(SANDBOX) + ".*"), callback=forward)
        yield mock


@pytest.fixture
def fuzz_schema(make_app: Any, make_account: Any, sandbox_upstream: Any) -> Any:
    app = make_app(catalog_path="catalogs/sandbox.yaml", sandbox_url=SANDBOX,
                   task_sweep_seconds=3600.0)
    account = make_account(credits="1000000")
    config = SchemathesisConfig.from_dict({
        "seed": SEED,
        "headers": {"Authorization": f"Bearer {account.api_key}"},
        "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True},
    })
    # Keep the traceback of any 500, so a failure report says where it came from.
    handler = app.error_handler_spec[None][None][Exception]

    def record(exc: Exception) -> Any:
        SERVER_ERRORS.append("".join(traceback.format_exception(exc))[-3000:])
        return handler(exc)

    app.register_error_handler(Exception, record)
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


def _fuzz(operation: Any, mode: GenerationMode, statuses: Counter[str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        pinned = PINNED_MODELS.get(operation.path)
        if mode is GenerationMode.POSITIVE and pinned and isinstance(case.body, dict):
            case.body["model"] = pinned  # a free string is never in the catalog: go deeper
        response = case.call_and_validate(checks=CHECKS)
        statuses[f"{operation.label} {response.status_code}"] += 1

    run()


# ~40-60 s of fuzzing on a 2-core machine: past the suite's default 60 s limit under load.
@pytest.mark.timeout(300)
def test_served_spec_holds_under_fuzzing(fuzz_schema: Any) -> None:
    # The operations are driven one by one rather than through schemathesis' pytest plugin,
    # whose lazy fixture loader does not run on pytest 9.2.
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    unsatisfiable: list[str] = []
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) >= 19  # every served operation
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, statuses)
            except Unsatisfiable:
                unsatisfiable.append(f"{operation.label} [{mode}]")  # e.g. nothing to negate
            except (BaseExceptionGroup, AssertionError) as exc:  # one report names them all
                failures.append(f"{operation.label} [{mode}]: {exc}")
    accepted = {label.rsplit(" ", 1)[0] for label in statuses if label.endswith((" 200", " 201",
                                                                               " 202", " 204"))}
    print(f"schemathesis: {len(operations)} operations, {sum(statuses.values())} cases "
          f"({len(accepted)} operations answered 2xx at least once), "
          f"{len(failures)} failing operation/mode pairs; no cases possible for "
          f"{unsatisfiable}")
    assert not failures, "\n\n".join(failures + SERVER_ERRORS)
    # The fuzzer got past auth and validation: most operations did real work.
    assert accepted >= MUST_SUCCEED, "\n".join(f"{k}: {v}" for k, v in sorted(statuses.items()))


def test_served_responses_list_every_content_type_the_contract_does(client: Any) -> None:
    # Found by a longer fuzz run: the SSE doc had replaced chat's application/json 200 body.
    import yaml

    contract = yaml.safe_load((Path(__file__).parent / "beatra-openapi.yaml").read_text())
    served = client.get("/openapi.json").get_json()
    missing = []
    for path, methods in contract["paths"].items():
        for method, op in methods.items():
            for status, resp in (op.get("responses") or {}).items():
                want = set((resp.get("content") or {}).keys())
                got = set((served["paths"][path][method]["responses"].get(str(status), {})
                           .get("content") or {}).keys())
                if want - got:
                    missing.append(f"{method.upper()} {path} {status}: {sorted(want - got)}")
    assert not missing, missing
