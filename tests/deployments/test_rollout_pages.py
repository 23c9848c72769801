"""Rollout pages: planning with a live preview, the live detail, actions by role, host runs, the dry run."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments import selectors
from deployments.choices import HostRunStatus, RolloutStatus, WaveStatus
from deployments.models import HostRun, Profile, Rollout, StepResult, Wave
from deployments.services.rollouts import rollout_advance, rollout_create, rollout_start
from hosts.choices import Eligibility, StepStatus
from hosts.models import Host
from mdefleet.audit import SYSTEM
from mdefleet.models import AuditEvent
from tests.factories import (
    ProfileFactory,
    StepResultFactory,
    eligible_hosts,
    fernet_keys,  # noqa: F401 (fixture)
)

MARKER = "MARKER-onboarding-secret-7c1d"
HTMX = {"HTTP_HX_REQUEST": "true"}
POLL = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "rollout-poll"}

# Rollout tasks are enqueued on commit: they go to the real, flushed test Redis db (`broker`), where no
# worker takes them.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys", "broker")]


@pytest.fixture
def profile() -> Profile:
    return ProfileFactory(name="rhel web", onboarding=json.dumps({"onboardingInfo": MARKER}))


def plan(profile: Profile, hosts: list[Host], name: str = "web tier", **kwargs: Any) -> Rollout:
    kwargs.setdefault("wave_plan", "1, 50%, 100%")
    return rollout_create(actor=SYSTEM, name=name, profile=profile, selection={"ids": [h.pk for h in hosts]}, **kwargs)


def url(name: str, *args: Any) -> str:
    return reverse(f"deployments:{name}", args=args)


def finish(runs: list[HostRun] | Any, status: str = HostRunStatus.OK, steps: tuple[str, ...] = ("facts",)) -> None:
    """Play the worker: record the runs' steps and end them (a minute ago: older than any poll)."""
    now = timezone.now() - timedelta(minutes=1)
    for run in runs:
        for key in steps:
            StepResultFactory(
                host_run=run, step=key, status=StepStatus.OK if status == HostRunStatus.OK else StepStatus.FAILED
            )
        HostRun.objects.filter(pk=run.pk).update(
            status=status, started_at=now, finished_at=now, reason="" if status == "ok" else "disk full on /var"
        )


def form_data(profile: Profile, chosen: list[Host], **override: Any) -> dict[str, Any]:
    data = {
        "name": "May patch window",
        "profile": profile.pk,
        "ticket": "CHG0031234",
        "tags": "",
        "hosts": "\n".join(h.name for h in chosen),
        "wave_plan": "1, 5%, 25%, 100%",
        "max_failed_per_wave_value": "10",
        "max_failed_per_wave_unit": "pct",
        "max_failed_total_value": "5",
        "max_failed_total_unit": "count",
        "reg_cpu_points": "25",
        "reg_mem_mb": "1024",
        "reg_mem_pct": "",
        "reg_agent_rss_mb": "1024",
        "reg_agent_cpu_pct": "",
        "reg_disk_mb": "2048",
        "soak_minutes": "0",
        "settle_seconds": "60",
        "auto_promote": "1",
        "approval_timeout_hours": "24",
    }
    data.update(override)
    return data


# --- list ------------------------------------------------------------------------------------------


def test_a_viewer_sees_the_rollouts_with_status_waves_and_host_counts(viewer_client: Any, profile: Profile) -> None:
    rollout = plan(profile, eligible_hosts(4), ticket="CHG0031234")
    finish(rollout.host_runs.all()[:1])
    response = viewer_client.get(url("rollouts"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "web tier" in body and "CHG0031234" in body and "rhel web" in body
    assert "s-draft" in body
    assert "0 / 3" in body  # waves done / total
    assert "1 ok" in body
    assert "New rollout" not in body  # viewers plan nothing


def test_the_list_filters_by_status_ticket_and_name(viewer_client: Any, profile: Profile) -> None:
    plan(profile, eligible_hosts(2, prefix="a"), name="alpha", ticket="CHG1")
    started = plan(profile, eligible_hosts(2, prefix="b"), name="bravo", ticket="CHG2")
    rollout_start(actor=SYSTEM, rollout=started)
    assert "bravo" not in viewer_client.get(url("rollouts"), {"ticket": "CHG1"}).content.decode()
    running = viewer_client.get(url("rollouts"), {"status": "running"}).content.decode()
    assert "bravo" in running and "alpha" not in running
    table = viewer_client.get(url("rollouts"), {"q": "alph"}, **{**HTMX, "HTTP_HX_TARGET": "rollout-table"})
    assert table.content.decode().lstrip().startswith('<div id="rollout-table">')
    assert "alpha" in table.content.decode() and "bravo" not in table.content.decode()


def test_the_list_costs_the_same_queries_for_one_rollout_and_ten(viewer_client: Any, profile: Profile) -> None:
    counts = []
    for total in (1, 10):
        while Rollout.objects.count() < total:
            plan(profile, eligible_hosts(3, prefix=f"r{Rollout.objects.count()}-"), name=f"r{Rollout.objects.count()}")
        viewer_client.get(url("rollouts"))
        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get(url("rollouts")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_people_without_a_role_cannot_see_rollouts(client: Any, users: dict) -> None:
    assert client.get(url("rollouts")).status_code == 302  # anonymous: to the login page
    client.force_login(users["none"])
    assert client.get(url("rollouts")).status_code == 403


# --- new rollout and preview -----------------------------------------------------------------------


def test_an_operator_plans_a_rollout_through_the_form_and_lands_on_its_draft(
    operator_client: Any, profile: Profile
) -> None:
    hosts = eligible_hosts(20)
    response = operator_client.post(url("rollout-new"), form_data(profile, hosts))
    rollout = Rollout.objects.get()
    assert response.status_code == 302 and response["Location"] == url("rollout", rollout.pk)
    assert rollout.status == RolloutStatus.DRAFT and rollout.ticket == "CHG0031234"
    assert list(rollout.waves.values_list("planned_size", flat=True)) == [1, 4, 15]
    assert rollout.gates["max_failed_per_wave"] == {"value": 10.0, "unit": "pct"}
    assert rollout.gates["regression"]["mem_pct"] is None
    assert AuditEvent.objects.filter(action="rollout.create", target_id=str(rollout.pk)).exists()
    page = operator_client.get(response["Location"]).content.decode()
    assert "Start</button>" in page and "Draft" in page


def test_hosts_are_chosen_by_tag_and_fleet_filter_together(operator_client: Any, profile: Profile) -> None:
    eligible_hosts(3, tags=("web",), prefix="web")
    eligible_hosts(2, tags=("db",), prefix="db")
    data = form_data(profile, [], hosts="", tags="web", filter_q="web-000", wave_plan="100%")
    assert operator_client.post(url("rollout-new"), data).status_code == 302
    names = set(Rollout.objects.get().host_runs.values_list("host__name", flat=True))
    assert names == {"web-0000", "web-0001", "web-0002"}


def test_the_form_takes_over_the_fleet_pages_filter(operator_client: Any, profile: Profile) -> None:
    eligible_hosts(2, tags=("web",))
    body = operator_client.get(url("rollout-new"), {"tag": "web", "q": "web-", "ids": ["3", "4"]}).content.decode()
    assert '<option value="web" selected>web</option>' in body
    assert 'name="filter_q" value="web-"' in body and "\n3, 4</textarea>" in body


def test_viewers_may_not_open_the_form_or_ask_for_a_preview(viewer_client: Any, profile: Profile) -> None:
    assert viewer_client.get(url("rollout-new")).status_code == 403
    assert viewer_client.post(url("rollout-preview"), form_data(profile, []), **HTMX).status_code == 403


def test_the_preview_shows_wave_sizes_and_every_excluded_host_with_its_reason(
    operator_client: Any, profile: Profile
) -> None:
    hosts = eligible_hosts(4)
    busy = eligible_hosts(1, prefix="busy")
    plan(profile, busy, name="Other rollout", wave_plan="100%")
    unknown = Host.objects.create(
        name="new-box", address="192.0.2.10", ssh_user="deploy", credential=hosts[0].credential
    )
    old = Host.objects.create(
        name="old-box",
        address="192.0.2.11",
        ssh_user="deploy",
        credential=hosts[0].credential,
        eligibility=Eligibility.INELIGIBLE,
        eligibility_reasons=["RHEL 6.10 is not supported"],
    )
    data = form_data(profile, [*hosts, *busy, unknown, old], wave_plan="1, 2, 100%")
    response = operator_client.post(url("rollout-preview"), data, **{**HTMX, "HTTP_HX_TARGET": "rollout-preview"})
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<div id="rollout-preview"')
    assert "Wave 1: 1 host</span> · <span>Wave 2: 2 hosts</span> · <span>Wave 3: 1 host" in body
    assert "<b>4</b> eligible hosts" in body
    assert "busy-" in body and "in rollout &#x27;Other rollout&#x27;" in body
    assert "new-box" in body and "not discovered yet" in body
    assert "old-box" in body and "RHEL 6.10 is not supported" in body
    assert Rollout.objects.count() == 1  # the preview saves nothing


def test_the_preview_works_without_javascript_on_the_form_page(operator_client: Any, profile: Profile) -> None:
    response = operator_client.post(url("rollout-preview"), form_data(profile, eligible_hosts(3), wave_plan="1, 100%"))
    body = response.content.decode()
    assert "<h1>New rollout</h1>" in body and "Wave 2: 2 hosts" in body


def test_the_preview_explains_a_bad_plan_instead_of_waves(operator_client: Any, profile: Profile) -> None:
    data = form_data(profile, eligible_hosts(3), wave_plan="1, abc")
    body = operator_client.post(url("rollout-preview"), data, **HTMX).content.decode()
    assert "&#x27;abc&#x27; is neither a host count" in body


@pytest.mark.parametrize(
    ("override", "field_text"),
    [
        ({"name": "  "}, "give the rollout a name"),
        ({"wave_plan": "1, abc"}, "is neither a host count (5) nor a percentage (5%)"),
        ({"max_failed_per_wave_value": "150"}, "is a percentage: at most 100"),
        ({"hosts": ""}, "choose hosts by ids, tags or a filter"),
        ({"hosts": "no-such-host"}, "no host named no-such-host"),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_saved(
    operator_client: Any, profile: Profile, override: dict[str, str], field_text: str
) -> None:
    data = form_data(profile, eligible_hosts(3), **override)
    events = AuditEvent.objects.count()
    response = operator_client.post(url("rollout-new"), data)
    assert response.status_code == 200
    assert field_text in response.content.decode().replace("&#x27;", "'")
    assert Rollout.objects.count() == 0 and AuditEvent.objects.count() == events


def test_a_host_held_by_another_active_rollout_refuses_the_plan_naming_that_rollout(
    operator_client: Any, profile: Profile
) -> None:
    hosts = eligible_hosts(3)
    plan(profile, hosts[:1], name="Canary on web-0000", wave_plan="100%")
    response = operator_client.post(url("rollout-new"), form_data(profile, hosts))
    body = response.content.decode().replace("&#x27;", "'")
    assert "web-0000 is already in rollout 'Canary on web-0000'" in body
    assert Rollout.objects.count() == 1


# --- detail ----------------------------------------------------------------------------------------


def test_the_detail_shows_waves_gate_verdicts_step_counts_and_one_square_per_host(
    viewer_client: Any, profile: Profile
) -> None:
    rollout = plan(profile, eligible_hosts(5), wave_plan="2, 100%")
    rollout_start(actor=SYSTEM, rollout=rollout)
    first = list(rollout.host_runs.filter(wave__index=0))
    finish(first[:1], HostRunStatus.OK, steps=("facts", "requirements"))
    finish(first[1:], HostRunStatus.FAILED)
    rollout_advance(rollout_id=rollout.pk)
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.HALTED
    body = viewer_client.get(url("rollout", rollout.pk)).content.decode()
    assert "Halted.</strong> Wave 1 gate failed: 1 of 2 hosts failed" in body
    assert "Gate: Fail" in body and "1 of 2 failed (allowed 0)" in body
    assert "Facts and support matrix" in body and "System requirements" in body
    assert len(re.findall(r'<a id="hr\d+" class="sq q-', body)) == 5
    assert f'href="/rollouts/{rollout.pk}/hosts/{first[1].pk}/" title="web-0001 · Failed · disk full on /var"' in body
    assert "Retry" not in body and "Abort" not in body  # viewers get no action buttons
    assert 'id="rollout-poll"' in body and "hx-trigger" not in body.split('id="rollout-poll"')[1].split(">")[0]


def test_a_waiting_rollout_says_what_it_waits_for_and_offers_approval_to_approvers_only(
    client: Any, users: dict, profile: Profile
) -> None:
    rollout = plan(profile, eligible_hosts(3), wave_plan="1, 100%", auto_promote=False)
    rollout_start(actor=SYSTEM, rollout=rollout)
    finish(rollout.host_runs.filter(wave__index=0))
    Rollout.objects.filter(pk=rollout.pk).update(
        gates={"regression": {k: None for k in ("cpu_points", "mem_mb", "agent_rss_mb", "disk_mb")}}
    )
    rollout_advance(rollout_id=rollout.pk)
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.WAITING_APPROVAL
    client.force_login(users["operator"])
    body = client.get(url("rollout", rollout.pk)).content.decode()
    assert "Waiting for an approver to start wave 2." in body and "Approve wave 2" not in body
    client.force_login(users["approver"])
    assert "Approve wave 2" in client.get(url("rollout", rollout.pk)).content.decode()


def test_a_passed_wave_without_soak_starts_the_next_wave_at_once(profile: Profile) -> None:
    rollout = plan(profile, eligible_hosts(3), wave_plan="1, 100%")
    Rollout.objects.filter(pk=rollout.pk).update(
        gates={"regression": {"cpu_points": None, "mem_mb": None, "agent_rss_mb": None, "disk_mb": None}}
    )
    rollout_start(actor=SYSTEM, rollout=rollout)
    finish(rollout.host_runs.filter(wave__index=0))
    rollout_advance(rollout_id=rollout.pk)
    rollout.refresh_from_db()
    assert (rollout.status, rollout.current_wave) == (RolloutStatus.RUNNING, 1)
    assert Wave.objects.get(rollout=rollout, index=1).status == WaveStatus.RUNNING


# --- the live poll ---------------------------------------------------------------------------------


def poll_url(client: Any, rollout: Rollout) -> str:
    body = client.get(url("rollout", rollout.pk)).content.decode()
    match = re.search(r'id="rollout-poll"[^>]*hx-get="([^"]+)"', body)
    assert match, "the page should poll"
    return match.group(1).replace("&amp;", "&")


def test_the_poll_answers_286_with_everything_once_the_rollout_is_completed(
    viewer_client: Any, profile: Profile
) -> None:
    rollout = plan(profile, eligible_hosts(2), wave_plan="100%")
    rollout_start(actor=SYSTEM, rollout=rollout)
    since = poll_url(viewer_client, rollout)
    finish(rollout.host_runs.all())
    Rollout.objects.filter(pk=rollout.pk).update(status=RolloutStatus.COMPLETED, finished_at=timezone.now())
    response = viewer_client.get(since, **POLL)
    assert response.status_code == 286
    body = response.content.decode()
    assert "hx-trigger" not in body.split("\n")[1]  # the new poll element does not poll again
    assert 'id="rollout-head" class="rollout-head" hx-swap-oob="true"' in body and "Completed" in body
    assert body.count('class="sq q-ok"') == 2


def test_the_poll_sends_only_the_squares_and_counters_that_changed(viewer_client: Any, profile: Profile) -> None:
    rollout = plan(profile, eligible_hosts(30), wave_plan="100%")
    rollout_start(actor=SYSTEM, rollout=rollout)
    first = poll_url(viewer_client, rollout)
    idle = viewer_client.get(first, **POLL)
    assert idle.status_code == 200
    assert "hx-swap-oob" not in idle.content.decode() and len(idle.content) < 400

    run = rollout.host_runs.order_by("id")[7]
    StepResultFactory(host_run=run, step="requirements")
    HostRun.objects.filter(pk=run.pk).update(status=HostRunStatus.RUNNING, current_step="requirements")
    since = re.search(r'hx-get="([^"]+)"', idle.content.decode()).group(1).replace("&amp;", "&")
    changed = viewer_client.get(since, **POLL).content.decode()
    squares = re.findall(r'<a id="hr(\d+)"', changed)
    assert squares == [str(run.pk)]
    assert "System requirements" in changed  # the square's title says the step it is on
    assert f'id="wave-{run.wave_id}-counts" class="wave-counts" hx-swap-oob="true"' in changed
    assert 'id="rollout-totals"' in changed and "running <b>1</b>" in changed

    again = re.search(r'hx-get="([^"]+)"', changed).group(1).replace("&amp;", "&")
    later = viewer_client.get(again, **POLL).content.decode()
    # The step is already seen; only the claim-time overlap may bring the square once more.
    assert len(re.findall(r'<a id="hr(\d+)"', later)) <= 1


def test_a_burst_of_changes_in_a_wave_resends_its_grid_whole(viewer_client: Any, profile: Profile) -> None:
    rollout = plan(profile, eligible_hosts(selectors.GRID_SQUARES_OOB_MAX + 20), wave_plan="100%")
    rollout_start(actor=SYSTEM, rollout=rollout)
    since = poll_url(viewer_client, rollout)
    runs = list(rollout.host_runs.all())
    StepResult.objects.bulk_create(
        [StepResult(host_run=run, step="facts", status=StepStatus.OK, finished_at=timezone.now()) for run in runs]
    )
    body = viewer_client.get(since, **POLL).content.decode()
    wave = runs[0].wave_id
    assert f'id="wave-{wave}-grid" class="squares" role="group" aria-label="Hosts of wave 1" hx-swap-oob="true"' in body
    assert body.count('class="sq q-') == len(runs) and body.count('hx-swap-oob="true"></a>') == 0


def test_a_change_of_the_rollout_itself_resends_the_header_and_the_waves(
    operator_client: Any, profile: Profile
) -> None:
    rollout = plan(profile, eligible_hosts(3), wave_plan="100%")
    rollout_start(actor=SYSTEM, rollout=rollout)
    since = poll_url(operator_client, rollout)
    operator_client.post(url("rollout-action", rollout.pk, "pause"))
    response = operator_client.get(since, **POLL)
    body = response.content.decode()
    assert response.status_code == 286  # paused with nothing running: at rest
    assert "Paused" in body and "Resume</button>" in body and body.count('class="sq q-pending"') == 3


def test_a_malformed_cursor_gets_everything_rather_than_an_error(viewer_client: Any, profile: Profile) -> None:
    rollout = plan(profile, eligible_hosts(2), wave_plan="100%")
    rollout_start(actor=SYSTEM, rollout=rollout)
    response = viewer_client.get(url("rollout", rollout.pk) + "?since=garbage", **POLL)
    assert response.status_code == 200 and response.content.decode().count('class="sq q-') == 2


def _rollout_with_runs(profile: Profile, count: int, name: str) -> Rollout:
    rollout = plan(profile, eligible_hosts(count, prefix=name), name=name, wave_plan="1, 100%")
    rollout_start(actor=SYSTEM, rollout=rollout)
    runs = list(rollout.host_runs.all())
    finish(runs[: max(1, count // 2)], steps=("facts", "requirements", "conflicts"))
    HostRun.objects.filter(pk__in=[r.pk for r in runs[count // 2 :]]).update(
        status=HostRunStatus.RUNNING, current_step="network"
    )
    return rollout


def test_the_detail_page_costs_the_same_queries_for_one_host_and_fifty(viewer_client: Any, profile: Profile) -> None:
    small, large = _rollout_with_runs(profile, 1, "one"), _rollout_with_runs(profile, 50, "fifty")
    counts = []
    for rollout in (small, large):
        viewer_client.get(url("rollout", rollout.pk))  # warm the session
        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get(url("rollout", rollout.pk)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_poll_costs_the_same_queries_and_bytes_for_one_host_and_fifty(viewer_client: Any, profile: Profile) -> None:
    small, large = _rollout_with_runs(profile, 1, "one"), _rollout_with_runs(profile, 50, "fifty")
    idle_queries, idle_sizes, busy_queries = [], [], []
    for rollout in (small, large):
        since = poll_url(viewer_client, rollout)
        with CaptureQueriesContext(connection) as queries:
            idle = viewer_client.get(since, **POLL)
        idle_queries.append(len(queries))
        idle_sizes.append(len(idle.content) - len(str(rollout.pk)) * 2)
        run = rollout.host_runs.filter(status=HostRunStatus.RUNNING).first()
        StepResultFactory(host_run=run, step="network")
        with CaptureQueriesContext(connection) as queries:
            viewer_client.get(since, **POLL)
        busy_queries.append(len(queries))
    assert idle_queries[0] == idle_queries[1]
    assert abs(idle_sizes[0] - idle_sizes[1]) < 16  # only the cursor's digits differ
    assert busy_queries[0] == busy_queries[1]


def test_a_thousand_host_wave_renders_as_a_compact_grid(viewer_client: Any, profile: Profile) -> None:
    rollout = _rollout_with_runs(profile, 1000, "big")
    response = viewer_client.get(url("rollout", rollout.pk))
    body = response.content.decode()
    assert len(re.findall(r'<a id="hr\d+" class="sq q-', body)) == 1000
    # About 120 bytes a square: the grid is the page, not a table of a thousand rows.
    grid = body.split('id="wave-', 2)[2]
    assert len(grid.encode()) < 1000 * 160


# --- actions ---------------------------------------------------------------------------------------


def _in_state(profile: Profile, status: str) -> Rollout:
    rollout = plan(profile, eligible_hosts(3, prefix=f"h{status[:4]}"), name=f"in {status}", wave_plan="1, 100%")
    if status != RolloutStatus.DRAFT:
        rollout_start(actor=SYSTEM, rollout=rollout)
    if status in (RolloutStatus.HALTED, RolloutStatus.PAUSED, RolloutStatus.WAITING_APPROVAL):
        finish(rollout.host_runs.filter(wave__index=0), HostRunStatus.FAILED)
        Rollout.objects.filter(pk=rollout.pk).update(status=status)
    return Rollout.objects.get(pk=rollout.pk)


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
def test_an_operator_steers_the_rollout_from_its_page_and_each_action_is_audited(
    operator_client: Any, profile: Profile, action: str, state: str, after: str
) -> None:
    rollout = _in_state(profile, state)
    data = {"confirm": "yes"} if action == "abort" else {}
    response = operator_client.post(url("rollout-action", rollout.pk, action), data)
    assert response.status_code == 302 and response["Location"] == url("rollout", rollout.pk)
    assert Rollout.objects.get(pk=rollout.pk).status == after
    audited = AuditEvent.objects.filter(target_id=str(rollout.pk), action=f"rollout.{action.replace('-', '_')}")
    assert audited.get().actor_label == "operator-user"


@pytest.mark.parametrize("action", ["start", "pause", "resume", "abort", "approve", "retry-failed"])
def test_a_viewer_may_not_take_any_action(viewer_client: Any, profile: Profile, action: str) -> None:
    rollout = _in_state(profile, RolloutStatus.DRAFT)
    assert viewer_client.post(url("rollout-action", rollout.pk, action), {"confirm": "yes"}).status_code == 403
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.DRAFT


def test_only_an_approver_approves_the_next_wave(client: Any, users: dict, profile: Profile) -> None:
    rollout = _in_state(profile, RolloutStatus.WAITING_APPROVAL)
    client.force_login(users["operator"])
    assert client.post(url("rollout-action", rollout.pk, "approve")).status_code == 403
    client.force_login(users["approver"])
    assert client.post(url("rollout-action", rollout.pk, "approve")).status_code == 302
    rollout.refresh_from_db()
    assert (rollout.status, rollout.current_wave) == (RolloutStatus.RUNNING, 1)
    assert Wave.objects.get(rollout=rollout, index=0).approved_by == users["approver"]


def test_an_action_that_does_not_apply_answers_409_with_the_reason(operator_client: Any, profile: Profile) -> None:
    rollout = _in_state(profile, RolloutStatus.DRAFT)
    response = operator_client.post(url("rollout-action", rollout.pk, "pause"))
    assert response.status_code == 409
    assert "Nothing done: a draft rollout cannot be paused." in response.content.decode()
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.DRAFT


def test_abort_asks_for_confirmation_before_it_does_anything(operator_client: Any, profile: Profile) -> None:
    rollout = _in_state(profile, RolloutStatus.RUNNING)
    for response in (
        operator_client.get(url("rollout-action", rollout.pk, "abort")),
        operator_client.post(url("rollout-action", rollout.pk, "abort")),
    ):
        assert response.status_code == 200 and "Abort the rollout</button>" in response.content.decode()
    assert Rollout.objects.get(pk=rollout.pk).status == RolloutStatus.RUNNING


def test_an_unknown_action_is_not_found(operator_client: Any, profile: Profile) -> None:
    rollout = _in_state(profile, RolloutStatus.DRAFT)
    assert operator_client.post(url("rollout-action", rollout.pk, "explode")).status_code == 404


# --- host runs -------------------------------------------------------------------------------------


def test_the_host_list_filters_the_failed_hosts_of_a_wave(viewer_client: Any, profile: Profile) -> None:
    rollout = _in_state(profile, RolloutStatus.HALTED)
    body = viewer_client.get(url("rollout-hosts", rollout.pk), {"status": "failed", "wave": 1}).content.decode()
    assert "hhalt-0000" in body and "disk full on /var" in body and "hhalt-0001" not in body


def test_the_host_list_costs_the_same_queries_for_one_host_and_fifty(viewer_client: Any, profile: Profile) -> None:
    counts = []
    for size in (1, 50):
        rollout = _rollout_with_runs(profile, size, f"list{size}")
        viewer_client.get(url("rollout-hosts", rollout.pk))
        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get(url("rollout-hosts", rollout.pk)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_host_run_page_shows_the_step_timeline_and_fetches_output_on_demand(
    viewer_client: Any, profile: Profile
) -> None:
    rollout = _in_state(profile, RolloutStatus.RUNNING)
    run = rollout.host_runs.order_by("id").first()
    step = StepResultFactory(
        host_run=run,
        step="install",
        status=StepStatus.FAILED,
        exit_code=1,
        duration_ms=83_400,
        command="dnf install -y mdatp",
        output="<script>alert(1)</script>\n" + "x" * (70 * 1024),
        reason="the package manager could not install mdatp",
    )
    page = viewer_client.get(url("rollout-host", rollout.pk, run.pk)).content.decode()
    assert "Install mdatp" in page and "1 min 23 s" in page and "could not install mdatp" in page
    assert "alert(1)" not in page  # output is fetched on demand, not with the page
    output_url = url("rollout-step-output", rollout.pk, run.pk, step.pk)
    assert f'hx-get="{output_url}"' in page
    fragment = viewer_client.get(output_url, **{**HTMX, "HTTP_HX_TARGET": f"out-{step.pk}"}).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment and "<script>alert" not in fragment
    assert "$ dnf install -y mdatp" in fragment and "first 64 KB shown" in fragment
    assert fragment.count("x") < 64 * 1024 + 100
    plain = viewer_client.get(output_url)
    assert plain.status_code == 200 and "<h1>Install mdatp" in plain.content.decode()


def test_a_step_of_another_rollout_is_not_found(viewer_client: Any, profile: Profile) -> None:
    one, other = _in_state(profile, RolloutStatus.RUNNING), _in_state(profile, RolloutStatus.DRAFT)
    run = one.host_runs.first()
    step = StepResultFactory(host_run=run)
    assert viewer_client.get(url("rollout-step-output", other.pk, run.pk, step.pk)).status_code == 404
    assert viewer_client.get(url("rollout-host", other.pk, run.pk)).status_code == 404


# --- dry run ---------------------------------------------------------------------------------------


def test_the_dry_run_shows_each_hosts_commands_and_never_the_onboarding_package(
    viewer_client: Any, profile: Profile
) -> None:
    rollout = plan(profile, eligible_hosts(3), wave_plan="100%")
    response = viewer_client.get(url("rollout-dry-run", rollout.pk), {"limit": 2})
    body = response.content.decode()
    assert response.status_code == 200
    assert MARKER not in body
    assert body.count('class="panel dry-host"') == 2 and "First 2 of 3 hosts" in body
    assert "dnf config-manager --add-repo https://packages.microsoft.com/config/rhel/9.0/prod.repo" in body
    assert "/etc/opt/microsoft/mdatp/mdatp_onboard.json</span>" in body and "(content not shown)" in body
    assert "judged locally, no command" in body  # the compare step
    assert not StepResult.objects.exists()  # nothing ran


def test_the_dry_run_selector_names_files_by_size_only(profile: Profile) -> None:
    rollout = plan(profile, eligible_hosts(1), wave_plan="100%")
    dry_run = selectors.rollout_dry_run(rollout=rollout, limit=5)
    onboarding = next(s for s in dry_run.hosts[0].steps if s.key == "onboarding")
    assert onboarding.stdin_bytes == len(json.dumps({"onboardingInfo": MARKER}))
    assert MARKER not in repr(dry_run)
