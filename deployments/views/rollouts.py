"""Rollout pages. Each URL renders a full page, or for an htmx request only the fragment it targets.

The detail page keeps itself current with one poll (``?since=<cursor>``) that answers with only
what changed (squares, counters, out of band) and 286 once there is nothing left to watch.
Actions are plain form posts that redirect back; every page works without JavaScript.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from deployments import selectors
from deployments.choices import HostRunStatus, RolloutStatus
from deployments.filters import HostRunFilterSet, RolloutFilterSet
from deployments.forms.rollouts import FILTER_FIELDS, RolloutForm
from deployments.models import HostRun, Rollout, StepResult
from deployments.services import rollouts as services
from deployments.views.schedules import preview_context as schedule_preview_context
from mdefleet.audit import Actor
from mdefleet.roles import APPROVER, OPERATOR, VIEWER, has_role
from mdefleet.views import htmx_target, role_required

PAGE_SIZE = 25
HOST_RUNS_PAGE_SIZE = 100
POLL_SECONDS = 2
EXCLUDED_SHOWN = 200

# Page actions: the service, the role it needs, and what the flash says when it worked.
ACTIONS: dict[str, tuple[Any, str, str]] = {
    "start": (services.rollout_start, OPERATOR, "Rollout started: wave 1 is running."),
    "pause": (services.rollout_pause, OPERATOR, "Rollout paused; hosts already running finish their step."),
    "resume": (services.rollout_resume, OPERATOR, "Rollout resumed."),
    "abort": (services.rollout_abort, OPERATOR, "Rollout aborted; hosts not started were cancelled."),
    "approve": (services.rollout_approve, APPROVER, "Approved: the next wave is starting."),
    "retry-failed": (services.rollout_retry_failed, OPERATOR, "Failed hosts queued again."),
}


def _rollout_or_404(pk: int) -> Rollout:
    try:
        return selectors.rollout_get(rollout_id=pk)
    except Rollout.DoesNotExist:
        raise Http404("No such rollout.") from None


# --- list ----------------------------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def rollout_list(request: HttpRequest) -> HttpResponse:
    """Rollouts, newest first, filtered by status, ticket, dates and a search, with their counts."""
    filterset = RolloutFilterSet(request.GET or None, queryset=selectors.rollout_list(), request=request)
    paginator = Paginator(filterset.qs, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "filterset": filterset,
        "page": page,
        "rollouts": selectors.rollouts_attach_counts(rollouts=list(page.object_list)),
        "page_range": paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
    }
    if htmx_target(request) == "rollout-table":
        return render(request, "deployments/partials/rollout_table.html", context)
    return render(request, "deployments/rollout_list.html", context)


# --- new rollout and its preview ------------------------------------------------------------------


def _preview_context(form: RolloutForm) -> dict[str, Any]:
    """The wave plan a valid selection would get, or why there is none yet."""
    errors = form.preview_errors()
    if errors:
        return {"preview_errors": [m for messages_ in errors.values() for m in messages_]}
    selection = form.selection()
    if not selection:
        return {"preview_errors": ["Choose hosts by tag, fleet filter or list to see the waves."]}
    try:
        preview = services.rollout_preview(selection=selection, wave_plan=form.cleaned_data.get("wave_plan") or "")
    except services.RolloutInvalid as exc:
        return {"preview_errors": [m for messages_ in exc.errors.values() for m in messages_]}
    excluded = preview["excluded"]
    reasons = Counter(reason for host in excluded for reason in host["reasons"])
    return {
        "excluded_reasons": reasons.most_common(5),
        "excluded_reasons_more": max(0, len(reasons) - 5),
        "preview": preview,
        "sizes": preview["sizes"],
        "eligible_count": len(preview["eligible"]),
        "excluded": excluded[:EXCLUDED_SHOWN],
        "excluded_more": max(0, len(excluded) - EXCLUDED_SHOWN),
        "excluded_count": len(excluded),
    }


def _initial_from_fleet(request: HttpRequest) -> dict[str, Any]:
    """The fleet page's filter (``/rollouts/new/?distro=rhel&tag=web``) or ticked ids (``?ids=1&ids=2``)."""
    initial: dict[str, Any] = {
        name: request.GET[param] for name, param in FILTER_FIELDS.items() if request.GET.get(param)
    }
    ids = [i for i in request.GET.getlist("ids") if i.isdigit()]
    if ids:
        initial["hosts"] = ", ".join(ids)
    return initial


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
def rollout_new(request: HttpRequest) -> HttpResponse:
    """Plan a rollout (draft) with a live preview; invalid input saves nothing and shows why."""
    # An empty POST is still a post: bound (and invalid), never mistaken for the blank form.
    form = RolloutForm(request.POST if request.method == "POST" else None, initial=_initial_from_fleet(request))
    context: dict[str, Any] = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            rollout = services.rollout_create(actor=Actor.from_request(request), **form.create_kwargs())
        except services.RolloutInvalid as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, f"Rollout {rollout.name} planned as a draft: check the waves, then start it.")
            return redirect("deployments:rollout", pk=rollout.pk)
    if request.method == "POST":
        context.update(_preview_context(form))
        context.update(schedule_preview_context(form))
    return render(request, "deployments/rollout_form.html", context)


@require_POST
@role_required(OPERATOR)
def rollout_preview(request: HttpRequest) -> HttpResponse:
    """The wave plan of the posted form: a fragment for htmx, the form page for a plain post."""
    form = RolloutForm(request.POST)
    form.is_valid()
    context = {"form": form, **_preview_context(form), **schedule_preview_context(form)}
    if htmx_target(request) is not None:
        return render(request, "deployments/partials/rollout_preview.html", context)
    return render(request, "deployments/rollout_form.html", context)


# --- detail and its live poll --------------------------------------------------------------------


def _available_actions(request: HttpRequest, rollout: Rollout, totals: dict[str, int]) -> list[str]:
    """The actions this caller may take on the rollout in its current state."""
    if not has_role(request.user, OPERATOR):
        return []
    status = rollout.status
    actions = []
    if status == RolloutStatus.DRAFT:
        actions.append("start")
    if status == RolloutStatus.WAITING_APPROVAL and has_role(request.user, APPROVER):
        actions.append("approve")
    if status in (RolloutStatus.RUNNING, RolloutStatus.SOAKING, RolloutStatus.WAITING_APPROVAL):
        actions.append("pause")
    if status == RolloutStatus.PAUSED:
        actions.append("resume")
    if status in (RolloutStatus.HALTED, RolloutStatus.PAUSED, RolloutStatus.RUNNING) and totals.get("failed"):
        actions.append("retry-failed")
    if status not in RolloutStatus.terminal():
        actions.append("abort")
    return actions


def _detail_context(request: HttpRequest, rollout: Rollout, *, cursor: selectors.PollCursor, live: bool) -> dict:
    base = reverse("deployments:rollout", args=[rollout.pk])
    return {
        "rollout": rollout,
        "cursor": cursor.encode(),
        "live": live,
        "poll_url": base,
        "poll_seconds": POLL_SECONDS,
        "host_base": f"{base}hosts/",
    }


def _selection_text(selection: dict[str, Any]) -> str:
    """How the hosts were chosen, in a line: "tags web, db · filter distro=rhel · 40 hosts by id"."""
    parts = []
    if selection.get("tags"):
        parts.append("tags " + ", ".join(selection["tags"]))
    if selection.get("filter"):
        parts.append("filter " + ", ".join(f"{k}={v}" for k, v in sorted(selection["filter"].items())))
    if selection.get("ids"):
        parts.append(f"{len(selection['ids'])} host{'s' if len(selection['ids']) != 1 else ''} by id or name")
    return " · ".join(parts) or json.dumps(selection)


@require_GET
@role_required(VIEWER)
def rollout_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Header, actions, waves with counts, gate verdicts, step counts and the per-host grid."""
    rollout = _rollout_or_404(pk)
    if htmx_target(request) == "rollout-poll":
        return _poll(request, rollout)
    return _detail_page(request, rollout)


def _detail_page(request: HttpRequest, rollout: Rollout, status: int = 200) -> HttpResponse:
    cursor = selectors.rollout_poll_cursor(rollout=rollout)
    waves = selectors.rollout_waves(rollout=rollout)
    totals = selectors.rollout_totals(waves=waves)
    context = _detail_context(request, rollout, cursor=cursor, live=selectors.rollout_is_live(rollout=rollout))
    context.update(
        waves=waves,
        waves_total=len(waves),
        totals=totals,
        actions=_available_actions(request, rollout, totals),
        gate_lines=selectors.gates_described(rollout.gates),
        soak_minutes=rollout.soak_seconds // 60,
        approval_hours=round(rollout.approval_timeout_seconds / 3600, 1),
        selection_text=_selection_text(rollout.selection),
        excluded=rollout.excluded_hosts[:EXCLUDED_SHOWN],
        excluded_more=max(0, len(rollout.excluded_hosts) - EXCLUDED_SHOWN),
    )
    return render(request, "deployments/rollout_detail.html", context, status=status)


def _poll(request: HttpRequest, rollout: Rollout) -> HttpResponse:
    """Only what changed since the client's cursor, out of band; 286 (and everything) once at rest."""
    since = selectors.PollCursor.decode(request.GET.get("since", ""))
    changes = selectors.rollout_changes(rollout=rollout, since=since)
    live = selectors.rollout_is_live(rollout=rollout)
    context = _detail_context(request, rollout, cursor=changes.cursor, live=live)
    # The last answer carries everything, so a square missed on the way is right in the end.
    full = changes.full or not live
    context["full"] = full
    if full:
        waves = selectors.rollout_waves(rollout=rollout)
        totals = selectors.rollout_totals(waves=waves)
        context.update(waves=waves, waves_total=len(waves), totals=totals, changed=True)
    elif changes.cells:
        counts = selectors.rollout_wave_counts(rollout=rollout)
        totals = selectors.rollout_totals(counts=counts)
        waves = selectors.rollout_waves(rollout=rollout, wave_ids=changes.wave_ids, with_cells=False)
        by_wave: dict[int, list[selectors.Cell]] = {}
        for cell in changes.cells:
            by_wave.setdefault(cell.wave_id, []).append(cell)
        whole = [w for w, cells in by_wave.items() if len(cells) > selectors.GRID_SQUARES_OOB_MAX]
        if whole:
            # Many squares changed at once: the wave's whole grid is smaller than each square apart.
            full_cells = selectors.rollout_cells(rollout=rollout, wave_ids=whole)
            for wave in waves:
                if wave.wave.pk in whole:
                    wave.cells = [c for c in full_cells if c.wave_id == wave.wave.pk]
        context.update(
            waves=waves,
            waves_total=len(counts),
            totals=totals,
            changed=True,
            squares=[c for c in changes.cells if c.wave_id not in whole],
            whole_grids=set(whole),
        )
    else:
        context.update(changed=False)
    if context.get("changed"):
        context["actions"] = _available_actions(request, rollout, context["totals"])
    response = render(request, "deployments/partials/rollout_poll.html", context)
    if not live:
        response.status_code = HttpResponseStopPolling.status_code
    return response


# --- actions -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
def rollout_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Start, pause, resume, abort (confirmed), approve (approver) or retry failed hosts; audited."""
    if action not in ACTIONS:
        raise Http404("No such action.")
    service, role, done = ACTIONS[action]
    if not has_role(request.user, role):
        raise PermissionDenied(f"This needs the {role} role.")
    rollout = _rollout_or_404(pk)
    if action == "abort" and (request.method == "GET" or request.POST.get("confirm") != "yes"):
        return render(request, "deployments/rollout_abort.html", {"rollout": rollout})
    if request.method != "POST":
        return redirect("deployments:rollout", pk=rollout.pk)
    try:
        service(actor=Actor.from_request(request), rollout=rollout)
    except services.ActionRefused as exc:
        messages.error(request, f"Nothing done: {exc}.")
        if request.htmx:
            # htmx does not swap error statuses: show the refreshed page with the message instead.
            return redirect("deployments:rollout", pk=rollout.pk)
        # A plain post gets the page back with the message and 409 Conflict, like the API.
        return _detail_page(request, _rollout_or_404(rollout.pk), status=409)
    if action == "start" and Rollout.objects.filter(pk=rollout.pk, status=RolloutStatus.SCHEDULED).exists():
        done = "Rollout scheduled: wave 1 starts when its schedule allows."
    messages.success(request, done)
    return redirect("deployments:rollout", pk=rollout.pk)


# --- host runs -----------------------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def rollout_hosts(request: HttpRequest, pk: int) -> HttpResponse:
    """The rollout's host runs as a table, filtered by status, wave and host."""
    rollout = _rollout_or_404(pk)
    filterset = HostRunFilterSet(request.GET or None, queryset=selectors.host_run_list(rollout=rollout))
    paginator = Paginator(filterset.qs, HOST_RUNS_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    runs = list(page.object_list)
    for run in runs:
        run.step_title = selectors.step_title(run.current_step) if run.current_step else ""  # type: ignore[attr-defined]
    context = {
        "rollout": rollout,
        "filterset": filterset,
        "page": page,
        "runs": runs,
        "page_range": paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
    }
    if htmx_target(request) == "rollout-hosts-table":
        return render(request, "deployments/partials/rollout_hosts_table.html", context)
    return render(request, "deployments/rollout_hosts.html", context)


def _duration(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms // 60_000} min {ms % 60_000 // 1000} s"


@require_GET
@role_required(VIEWER)
def host_run_detail(request: HttpRequest, pk: int, run_id: int) -> HttpResponse:
    """One host in the rollout: its step timeline; each step's output is fetched on demand."""
    rollout = _rollout_or_404(pk)
    try:
        run = selectors.host_run_get(rollout=rollout, run_id=run_id)
    except HostRun.DoesNotExist:
        raise Http404("No such host in this rollout.") from None
    steps = selectors.host_run_steps(host_run=run)
    for step in steps:
        step.title = selectors.step_title(step.step)  # type: ignore[attr-defined]
        step.duration_label = _duration(step.duration_ms)  # type: ignore[attr-defined]
    live = run.status in (HostRunStatus.PENDING, HostRunStatus.RUNNING) and rollout.status not in (
        RolloutStatus.terminal()
    )
    context = {"rollout": rollout, "run": run, "steps": steps, "live": live, "poll_seconds": POLL_SECONDS}
    if htmx_target(request) == "host-run-steps":
        response = render(request, "deployments/partials/rollout_host_steps.html", context)
        if not live:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "deployments/rollout_host.html", context)


@require_GET
@role_required(VIEWER)
def step_output(request: HttpRequest, pk: int, run_id: int, step_id: int) -> HttpResponse:
    """One step's command and output (escaped, at most 64 KB shown), fetched on demand."""
    run = get_object_or_404(HostRun.objects.select_related("host"), rollout_id=pk, pk=run_id)
    try:
        step, output, truncated = selectors.step_output(host_run=run, step_id=step_id)
    except StepResult.DoesNotExist:
        raise Http404("No such step result.") from None
    step.title = selectors.step_title(step.step)  # type: ignore[attr-defined]
    context = {
        "rollout_id": pk,
        "run": run,
        "step": step,
        "output": output,
        "truncated": truncated,
        "limit_kb": selectors.OUTPUT_SHOWN_MAX // 1024,
    }
    if htmx_target(request) is not None:
        return render(request, "deployments/partials/rollout_step_output.html", context)
    return render(request, "deployments/rollout_step_output.html", context)


# --- dry run -------------------------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def rollout_dry_run(request: HttpRequest, pk: int) -> HttpResponse:
    """Per host, the exact commands the steps would send, without running them (files by name and size)."""
    rollout = _rollout_or_404(pk)
    try:
        limit = int(request.GET.get("limit", selectors.DRY_RUN_DEFAULT))
    except ValueError:
        limit = selectors.DRY_RUN_DEFAULT
    dry_run = selectors.rollout_dry_run(rollout=rollout, limit=limit)
    context = {"rollout": rollout, "dry_run": dry_run, "limits": (20, 50, 200)}
    return render(request, "deployments/rollout_dry_run.html", context)
