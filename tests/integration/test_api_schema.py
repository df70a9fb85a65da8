"""schemathesis against a live worker, from the OpenAPI description it serves (SPEC 11).

Every operation gets generated requests (random tenant ids, and the
scenario's real tenants), with the token; no answer may be a 500, and each
must be one the description declares, in its declared shape.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from rater.config import Settings
from rater.devkit.inputs import produce_inputs
from rater.devkit.scenario import TARIFFS, build
from rater.web.openapi import openapi
from tests.support.api_client import TOKEN, ApiWorker, call, ready, until

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]
# Derandomized, so CI runs the same requests every time; set more to explore further.
EXAMPLES_PER_OPERATION = int(os.environ.get("RATER_API_EXAMPLES", "60"))


def test_generated_requests_get_no_500_and_declared_answers(
    settings: Settings, tmp_path: Path
) -> None:
    settings = replace(settings, api_token=TOKEN)
    scenario = build(cdrs_per_tenant=5, seed=11)
    worker = ApiWorker(settings, tmp_path, "a")
    worker.start()
    try:
        asyncio.run(until("the worker ready", lambda: ready(worker), 120, [worker]))
        asyncio.run(produce_inputs(settings, scenario.messages, TARIFFS))
        status, served = asyncio.run(call(worker.port, "GET", "/openapi.json", token=TOKEN))
        assert status == 200 and served == openapi()
        schema = schemathesis.openapi.from_dict(served)
        base_url = f"http://127.0.0.1:{worker.port}"
        tenants = st.sampled_from([None, *sorted(scenario.states)])
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 9
        for operation in operations:

            @given(case=operation.as_strategy(), tenant=tenants)
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case, tenant: str | None) -> None:
                if tenant is not None and case.path_parameters:
                    case.path_parameters["tenant_id"] = tenant
                case.call_and_validate(
                    base_url=base_url,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    checks=CHECKS,
                    timeout=30,
                )

            run()
            assert worker.alive(), worker.tail()
    finally:
        worker.stop()
