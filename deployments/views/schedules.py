"""The schedule of a rollout: edit page (drafts and scheduled rollouts), live preview of the next openings.

The new-rollout form carries the same fields (``ScheduleForm``) and the same preview fragment.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from deployments import schedules as window_math
from deployments import selectors
from deployments.forms.schedules import ScheduleForm
from deployments.models import Rollout
from deployments.services import schedules as services
from mdefleet.audit import Actor
from mdefleet.roles import OPERATOR
from mdefleet.views import role_required

PREVIEW_COUNT = 6


def preview_context(form: ScheduleForm) -> dict[str, Any]:
    """The next openings of a validated schedule form, or why there are none."""
    if not form.is_bound:
        return {}
    if not form.is_valid() and any(f.errors for f in form.schedule_fields):
        return {"schedule_errors": True}
    data = form.schedule_data()
    if not data:
        return {"schedule_errors": True}
    schedule = window_math.schedule_from_fields(**data)
    now = timezone.now()
    openings = [o.local(schedule.tz) for o in window_math.preview(schedule, now, PREVIEW_COUNT)]
    return {
        "schedule_preview": openings,
        "schedule_tz": schedule.tz.key,
        "schedule_restricted": schedule.restricted or schedule.start_at is not None,
        "schedule_open_now": window_math.may_start(schedule, now),
        "schedule_deadline": schedule.start_before.astimezone(schedule.tz) if schedule.start_before else None,
    }


def _rollout_or_404(pk: int) -> Rollout:
    try:
        return selectors.rollout_get(rollout_id=pk)
    except Rollout.DoesNotExist:
        raise Http404("No such rollout.") from None


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
def rollout_schedule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change when a draft or scheduled rollout may run; invalid input changes nothing and says why."""
    rollout = _rollout_or_404(pk)
    editable = rollout.status in services.EDITABLE
    form = ScheduleForm(request.POST or None, initial=ScheduleForm.initial_from(rollout))
    status = 200
    if request.method == "POST":
        if not editable:
            messages.error(request, "Nothing changed: only a draft or scheduled rollout's schedule can change.")
            return redirect("deployments:rollout", pk=rollout.pk)
        if form.is_valid() and request.POST.get("preview"):
            pass  # the Preview button without JavaScript: show the openings, save nothing
        elif form.is_valid():
            try:
                services.rollout_schedule_set(
                    actor=Actor.from_request(request), rollout=rollout, fields=form.schedule_data()
                )
            except window_math.ScheduleError as exc:
                form.add_schedule_errors(exc.errors)
            except services.ScheduleRefused as exc:
                messages.error(request, f"Nothing changed: {exc}.")
                return redirect("deployments:rollout", pk=rollout.pk)
            else:
                messages.success(request, "Schedule saved.")
                return redirect("deployments:rollout", pk=rollout.pk)
        status = 200 if form.is_valid() else 400
    context = {"rollout": rollout, "form": form, "editable": editable, **preview_context(form)}
    if not form.is_bound:
        context.update(preview_context(ScheduleForm(initial=form.initial, data=form.initial)))
    return render(request, "deployments/rollout_schedule.html", context, status=status)


@require_POST
@role_required(OPERATOR)
def schedule_preview(request: HttpRequest) -> HttpResponse:
    """The next openings of the posted schedule fields, as the preview fragment."""
    form = ScheduleForm(request.POST)
    form.is_valid()
    context = {"form": form, **preview_context(form)}
    # Only htmx posts here; without JavaScript the forms' own Preview buttons show the same fragment.
    return render(request, "deployments/partials/rollout_schedule_preview.html", context)
