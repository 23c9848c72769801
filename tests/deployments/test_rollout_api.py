"""Rollout API: plan, preview, follow and steer rollouts by role; host runs with steps; the dry run."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.choices import HostRunStatus, RolloutStatus
from deployments.models import HostRun, Profile, Rollout, StepResult
from deployments.services.rollouts import rollout_create, rollout_start
from hosts.choices import StepStatus
from hosts.models import Host
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.factories import (
    ProfileFactory,
    StepResultFactory,
    eligible_hosts,
    fernet_keys,  # noqa: F401 (fixture)
)
from tests.problems import assert_problem, errors_by_path

MARKER = "MARKER-onboarding-secret-api-41aa"
ROLLOUTS = "/api/v1/rollouts/"

# Rollout tasks are enqueued on commit: they go to the real, flushed test Redis db (`broker`), where no
# worker takes them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys", "broker")]


@pytest.fixture
def profile() -> Profile:
    return ProfileFactory(name="rhel web", onboarding=json.dumps({"onboardingInfo": MARKER}))


def plan(profile: Profile, hosts: list[Host], name: str = "web tier", **kwargs: Any) -> Rollout:
    kwargs.setdefault("wave_plan", "1, 100%")
    return rollout_create(actor=SYSTEM, name=name, profile=profile, selection={"ids": [h.pk for h in hosts]}, **kwargs)


def body(profile: Profile, hosts: list[Host], **override: Any) -> dict[str, Any]:
    data = {
        "name": "May patch window",
        "profile": profile.pk,
        "ticket": "CHG0031234",
        "selection": {"ids": [h.pk for h in hosts]},
        "wave_plan": "1, 5%, 25%, 100%",
        "gates": {"max_failed_per_wave": {"value": 2, "unit": "count"}, "regression": {"mem_pct": 5}},
        "soak_seconds": 600,
        "auto_promote": False,
    }
    data.update(override)
    return data


def in_state(profile: Profile, status: str, prefix: str = "h") -> Rollout:
    rollout = plan(profile, eligible_hosts(3, prefix=f"{prefix}{status[:4]}"), name=f"in {status}")
    if status != RolloutStatus.DRAFT:
        rollout_start(actor=SYSTEM, rollout=rollout)
    if status in (RolloutStatus.HALTED, RolloutStatus.PAUSED, RolloutStatus.WAITING_APPROVAL):
        HostRun.objects.filter(rollout=rollout, wave__index=0).update(
            status=HostRunStatus.FAILED, reason="disk full", finished_at=timezone.now() - timedelta(minutes=1)
        )
        Rollout.objects.filter(pk=rollout.pk).update(status=status)
    return Rollout.objects.get(pk=rollout.pk)


# --- plan ------------------------------------------------------------------------------------------


def test_an_operator_plans_a_rollout_and_gets_its_waves_back(api_client_for: Any, profile: Profile) -> None:
    hosts = eligible_hosts(20)
    response = api_client_for("operator").post(ROLLOUTS, body(profile, hosts), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    rollout = Rollout.objects.get(pk=data["id"])
    assert data["status"] == "draft" and data["ticket"] == "CHG0031234" and data["profile_name"] == "rhel web"
    assert [w["planned_size"] for w in data["waves"]] == [1, 4, 15]
    assert data["waves"][0]["counts"] == {"pending": 1, "running": 0, "ok": 0, "failed": 0, "cancelled": 0, "total": 1}
    assert data["counts"]["total"] == 20 and data["excluded_hosts"] == []
    assert data["gates"]["max_failed_per_wave"] == {"value": 2, "unit": "count"}
    assert data["gates"]["regression"]["mem_pct"] == 5 and data["gates"]["regression"]["cpu_points"] == 25
    assert data["page_url"] == f"/rollouts/{rollout.pk}/"
    event = AuditEvent.objects.get(action="rollout.create", target_id=str(rollout.pk))
    assert event.actor_label == "operator-user (token)"


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"name": ""}, "name", "give the rollout a name"),
        ({"wave_plan": "1, abc"}, "wave_plan", "'abc' is neither a host count"),
        ({"gates": {"max_failed_per_wave": {"value": 150, "unit": "pct"}}}, "gates", "at most 100"),
        ({"gates": {"regression": {"cpu_load": 3}}}, "gates", "regression.cpu_load: unknown metric"),
        ({"selection": {}}, "selection", "choose hosts by ids, tags or a filter"),
        ({"selection": {"ids": [999999]}}, "selection", "no host with id 999999"),
        ({"soak_seconds": -5}, "soak_seconds", "between 0 and 604800"),
        ({"selection": {"filter": {"distr": "rhel"}}}, "selection", "unknown filter 'distr'"),
        ({"selection": ["web"]}, "selection", "an object"),
        ({"wave_plan": 5}, "wave_plan", "a list of counts and percentages"),
        ({"gates": 3}, "gates", "an object of gate settings"),
    ],
)
def test_bad_input_is_refused_by_field_and_nothing_is_saved(
    api_client_for: Any, profile: Profile, override: dict[str, Any], field: str, words: str
) -> None:
    data = body(profile, eligible_hosts(3), **override)
    events = AuditEvent.objects.count()
    response = api_client_for("operator").post(ROLLOUTS, data, format="json")
    assert response.status_code == 400
    assert words in " ".join(errors_by_path(response.json())[field])
    assert Rollout.objects.count() == 0 and AuditEvent.objects.count() == events


def test_a_host_in_another_active_rollout_refuses_the_plan_naming_that_rollout(
    api_client_for: Any, profile: Profile
) -> None:
    hosts = eligible_hosts(3)
    plan(profile, hosts[1:2], name="Canary", wave_plan="100%")
    response = api_client_for("operator").post(ROLLOUTS, body(profile, hosts), format="json")
    assert response.status_code == 400
    assert errors_by_path(response.json())["selection"] == ["web-0001 is already in rollout 'Canary'"]
    assert Rollout.objects.count() == 1


def test_the_preview_gives_sizes_and_excluded_hosts_and_saves_nothing(api_client_for: Any, profile: Profile) -> None:
    hosts = eligible_hosts(5)
    plan(profile, hosts[:1], name="Canary", wave_plan="100%")
    data = {"selection": {"ids": [h.pk for h in hosts]}, "wave_plan": ["1", "100%"]}
    response = api_client_for("operator").post(f"{ROLLOUTS}preview/", data, format="json")
    assert response.status_code == 200
    assert response.json()["sizes"] == [1, 3] and response.json()["eligible_count"] == 4
    assert response.json()["excluded"] == [
        {"host_id": hosts[0].pk, "name": "web-0000", "reasons": ["in rollout 'Canary'"]}
    ]
    assert Rollout.objects.count() == 1


def test_viewers_read_but_may_not_plan_and_roleless_users_may_not_read(api_client_for: Any, profile: Profile) -> None:
    rollout = plan(profile, eligible_hosts(2))
    viewer = api_client_for("viewer")
    assert viewer.get(ROLLOUTS).status_code == 200
    assert viewer.get(f"{ROLLOUTS}{rollout.pk}/").status_code == 200
    assert viewer.post(ROLLOUTS, body(profile, []), format="json").status_code == 403
    assert viewer.post(f"{ROLLOUTS}preview/", {"selection": {"ids": [1]}}, format="json").status_code == 403
    assert api_client_for("none").get(ROLLOUTS).status_code == 403


# --- list and read ---------------------------------------------------------------------------------


def test_the_list_filters_by_ticket_and_status_and_orders_by_name(api_client_for: Any, profile: Profile) -> None:
    plan(profile, eligible_hosts(2, prefix="a"), name="alpha", ticket="CHG0031234")
    bravo = plan(profile, eligible_hosts(2, prefix="b"), name="bravo", ticket="CHG0031234")
    plan(profile, eligible_hosts(2, prefix="c"), name="charlie", ticket="CHG9")
    rollout_start(actor=SYSTEM, rollout=bravo)
    api = api_client_for("viewer")
    found = api.get(ROLLOUTS, {"ticket": "CHG0031234", "status": "running"}).json()
    assert [r["name"] for r in found["results"]] == ["bravo"]
    ordered = api.get(ROLLOUTS, {"ordering": "-name"}).json()["results"]
    assert [r["name"] for r in ordered] == ["charlie", "bravo", "alpha"]
    assert api.get(ROLLOUTS, {"q": "arl"}).json()["count"] == 1
    assert api.get(ROLLOUTS, {"status": "exploded"}).status_code == 400


def test_a_halted_rollout_reports_its_reason_and_the_waves_gate_report(api_client_for: Any, profile: Profile) -> None:
    from deployments.services.rollouts import rollout_advance

    rollout = plan(profile, eligible_hosts(3), wave_plan="2, 100%")
    rollout_start(actor=SYSTEM, rollout=rollout)
    HostRun.objects.filter(rollout=rollout, wave__index=0).update(status=HostRunStatus.FAILED, reason="disk full")
    rollout_advance(rollout_id=rollout.pk)
    data = api_client_for("viewer").get(f"{ROLLOUTS}{rollout.pk}/").json()
    assert data["status"] == "halted" and data["halt_reason"].startswith("Wave 1 gate failed: 2 of 2 hosts failed")
    wave = data["waves"][0]
    assert wave["gate_verdict"] == "fail" and wave["status"] == "failed"
    assert wave["gate_report"]["numbers"]["failed"] == 2 and wave["counts"]["failed"] == 2


def _rollout_with_runs(profile: Profile, count: int, name: str) -> Rollout:
    rollout = plan(profile, eligible_hosts(count, prefix=name), name=name)
    rollout_start(actor=SYSTEM, rollout=rollout)
    for run in rollout.host_runs.all():
        StepResultFactory(host_run=run, step="facts")
        StepResultFactory(host_run=run, step="requirements", output="y" * 1000)
    HostRun.objects.filter(rollout=rollout).update(status=HostRunStatus.OK)
    return rollout


def test_the_list_costs_the_same_queries_for_rollouts_of_one_host_and_of_fifty(
    api_client_for: Any, profile: Profile
) -> None:
    api = api_client_for("viewer")
    counts = []
    for size in (1, 50):
        Rollout.objects.filter(status=RolloutStatus.RUNNING).update(status=RolloutStatus.COMPLETED)
        _rollout_with_runs(profile, size, f"r{size}-")
        with CaptureQueriesContext(connection) as queries:
            assert api.get(ROLLOUTS).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_host_runs_endpoint_costs_the_same_queries_for_one_host_and_fifty(
    api_client_for: Any, profile: Profile
) -> None:
    api = api_client_for("viewer")
    counts = []
    for size in (1, 50):
        rollout = _rollout_with_runs(profile, size, f"r{size}-")
        with CaptureQueriesContext(connection) as queries:
            response = api.get(f"{ROLLOUTS}{rollout.pk}/hosts/", {"output": "1"})
        assert response.json()["count"] == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_host_runs_come_with_their_steps_and_output_only_on_request_capped(
    api_client_for: Any, profile: Profile
) -> None:
    rollout = in_state(profile, RolloutStatus.HALTED)
    run = rollout.host_runs.filter(wave__index=0).get()
    StepResultFactory(host_run=run, step="install", status=StepStatus.FAILED, output="z" * (80 * 1024), parsed={"n": 1})
    api = api_client_for("viewer")
    listed = api.get(f"{ROLLOUTS}{rollout.pk}/hosts/", {"status": "failed"}).json()
    assert listed["count"] == 1
    step = listed["results"][0]["steps"][0]
    assert step["step"] == "install" and step["title"] == "Install mdatp" and step["status"] == "failed"
    assert "output" not in step and "parsed" not in step
    full = api.get(f"{ROLLOUTS}{rollout.pk}/hosts/", {"status": "failed", "output": "1", "parsed": "1"}).json()
    step = full["results"][0]["steps"][0]
    assert len(step["output"]) == 64 * 1024 and step["output_truncated"] is True and step["parsed"] == {"n": 1}
    assert api.get(f"{ROLLOUTS}{rollout.pk}/hosts/", {"wave": 2}).json()["count"] == 2


# --- actions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "state", "after"),
    [
        ("start", RolloutStatus.DRAFT, RolloutStatus.RUNNING),
        ("pause", RolloutStatus.RUNNING, RolloutStatus.PAUSED),
        ("resume", RolloutStatus.PAUSED, RolloutStatus.RUNNING),
        ("abort", RolloutStatus.RUNNING, RolloutStatus.ABORTED),
        ("retry-failed", RolloutStatus.HALTED, RolloutStatus.RUNNING),
    ],
)
def test_an_operator_takes_each_action_and_gets_the_rollout_back(
    api_client_for: Any, profile: Profile, action: str, state: str, after: str
) -> None:
    rollout = in_state(profile, state)
    response = api_client_for("operator").post(f"{ROLLOUTS}{rollout.pk}/{action}/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == after and Rollout.objects.get(pk=rollout.pk).status == after
    assert AuditEvent.objects.filter(target_id=str(rollout.pk), action=f"rollout.{action.replace('-', '_')}").exists()


@pytest.mark.parametrize("action", ["start", "pause", "resume", "abort", "approve", "retry-failed"])
def test_a_viewer_may_take_no_action(api_client_for: Any, profile: Profile, action: str) -> None:
    rollout = in_state(profile, RolloutStatus.DRAFT)
    assert api_client_for("viewer").post(f"{ROLLOUTS}{rollout.pk}/{action}/").status_code == 403
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.DRAFT


def test_only_an_approver_approves_the_next_wave(api_client_for: Any, users: dict, profile: Profile) -> None:
    rollout = in_state(profile, RolloutStatus.WAITING_APPROVAL)
    assert api_client_for("operator").post(f"{ROLLOUTS}{rollout.pk}/approve/").status_code == 403
    response = api_client_for("approver").post(f"{ROLLOUTS}{rollout.pk}/approve/")
    assert response.status_code == 200
    assert response.json()["status"] == "running" and response.json()["current_wave"] == 1
    assert response.json()["waves"][0]["approved_by"] == "approver-user"


@pytest.mark.parametrize(
    ("action", "state", "words"),
    [
        ("start", RolloutStatus.RUNNING, "only a draft can be started; this rollout is running"),
        ("pause", RolloutStatus.DRAFT, "a draft rollout cannot be paused"),
        ("resume", RolloutStatus.RUNNING, "only a paused rollout can be resumed"),
        ("approve", RolloutStatus.RUNNING, "the rollout is not waiting for an approval"),
        ("retry-failed", RolloutStatus.DRAFT, "a draft rollout cannot retry hosts"),
    ],
)
def test_an_action_that_does_not_apply_is_a_conflict_with_the_reason(
    api_client_for: Any, profile: Profile, action: str, state: str, words: str
) -> None:
    rollout = in_state(profile, state)
    response = api_client_for("admin").post(f"{ROLLOUTS}{rollout.pk}/{action}/")
    assert response.status_code == 409
    assert assert_problem(response.json(), 409)["detail"] == words
    assert Rollout.objects.get(pk=rollout.pk).status == state


def test_aborting_twice_is_a_conflict(api_client_for: Any, profile: Profile) -> None:
    rollout = in_state(profile, RolloutStatus.RUNNING)
    api = api_client_for("operator")
    assert api.post(f"{ROLLOUTS}{rollout.pk}/abort/").status_code == 200
    again = api.post(f"{ROLLOUTS}{rollout.pk}/abort/").json()
    assert assert_problem(again, 409)["detail"] == "the rollout is already aborted"


# --- dry run ---------------------------------------------------------------------------------------


def test_the_dry_run_gives_each_hosts_commands_and_never_the_onboarding_package(
    api_client_for: Any, profile: Profile
) -> None:
    rollout = plan(profile, eligible_hosts(4), wave_plan="100%")
    response = api_client_for("viewer").get(f"{ROLLOUTS}{rollout.pk}/dry-run/", {"limit": 3})
    assert response.status_code == 200
    assert MARKER not in response.content.decode()
    data = response.json()
    assert data["total"] == 4 and data["limit"] == 3 and len(data["hosts"]) == 3
    steps = {s["key"]: s for s in data["hosts"][0]["steps"]}
    assert steps["install"]["command"] and "mdatp" in steps["install"]["command"]
    assert steps["onboarding"]["stdin"] == {
        "name": "/etc/opt/microsoft/mdatp/mdatp_onboard.json",
        "bytes": len(json.dumps({"onboardingInfo": MARKER})),
    }
    assert steps["compare"]["command"] is None and steps["compare"]["note"] == "judged locally, no command"
    assert not StepResult.objects.exists()
    assert api_client_for("viewer").get(f"{ROLLOUTS}{rollout.pk}/dry-run/", {"limit": "x"}).status_code == 400
