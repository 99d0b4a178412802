"""Schemathesis against the served OpenAPI schema: no generated request gets a 5xx, the server keeps serving.

A small run for CI (10 cases per operation); benchmarks/README.md reports the long CLI run.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")

from .servicekit import Server, auth, calibration_file  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    calibration = calibration_file(tmp_path_factory.mktemp("cal"))
    env = {"DIARIZE_VOICEPRINT_CALIBRATION": str(calibration)} if calibration else {}
    server = Server(tmp_path_factory.mktemp("data"), DIARIZE_MAX_UPLOAD_MB="2", **env).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_generated_requests_never_get_a_server_error(api_schema, server):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call(base_url=server.url, headers=auth(), timeout=120)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            if response.status_code >= 400 and case.path != "/readyz":
                assert set(response.json()) == {"error"}

        check()


def test_the_server_still_serves_after_fuzzing(server):
    with server.http() as http:
        assert http.get("/readyz").json()["workers_ready"] == 1
        assert http.get("/v1/jobs", headers=auth()).status_code == 200
