"""schemathesis against the served OpenAPI schema over a live server, with an admin token.

Every operation gets a bounded, deterministic set of generated requests (valid and invalid);
each response must not be a server error and must conform to the schema: a documented status
code, a documented content type and a body that validates. State-changing operations run
against the test database; the tasks they enqueue go to the real broker, where no worker of
this test takes them (the periodic ticks of later tests find nothing of theirs to run).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deployments.services.rollouts import rollout_create
from mdefleet.audit import SYSTEM
from tests.factories import HostFactory, ProfileFactory, SnapshotFactory, eligible_hosts, fernet_keys  # noqa: F401
from tests.integration.rollout_setup import token_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fernet_keys")]

MAX_EXAMPLES = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def admin_token(live_server: Any) -> str:
    """An admin person's token, and a little of everything for the generated ids to find."""
    profile = ProfileFactory(name="baseline")
    hosts = eligible_hosts(3, tags=("web",))
    HostFactory(name="plain-host")
    SnapshotFactory(host=hosts[0])
    rollout_create(actor=SYSTEM, name="seed", profile=profile, selection={"ids": [h.pk for h in hosts]}, wave_plan="1")
    return token_for("admin")


def _served_schema() -> dict[str, Any]:
    """The schema exactly as /api/schema/ serves it (generated here so the operations are known at collection)."""
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


schema = schemathesis.openapi.from_dict(_served_schema())
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)


def test_the_live_server_serves_the_schema_under_test(live_server: Any, admin_token: str) -> None:
    import requests

    served = requests.get(
        f"{live_server.url}/api/schema/?format=json", headers={"Authorization": f"Token {admin_token}"}, timeout=30
    )
    assert served.status_code == 200
    assert served.json()["paths"].keys() == schema.raw_schema["paths"].keys()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_schema(case: Any, live_server: Any, admin_token: str) -> None:
    response = case.call(base_url=live_server.url, headers={"Authorization": f"Token {admin_token}"}, timeout=30)
    try:
        case.validate_response(response, checks=CHECKS)
    except Exception:
        print(case.method, case.formatted_path, case.query, json.dumps(case.body, default=str)[:500])
        raise
