"""Periodic jobs page: every "mdefleet: ..." beat task with its schedule and last run; admins edit them."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_celery_beat.models import PeriodicTask

from deployments.expiry import WARN_DAYS, expiring_hosts
from deployments.forms.periodic_jobs import PeriodicJobForm
from deployments.services import periodic_jobs as services
from mdefleet.audit import Actor
from mdefleet.roles import ADMIN, VIEWER, has_role
from mdefleet.views import form_errors_attach, htmx_target, role_required

EXPIRING_PANEL_ROWS = 10


def _rows(request: HttpRequest, bound: dict[int, PeriodicJobForm] | None = None) -> list[dict[str, Any]]:
    can_edit = has_role(request.user, ADMIN)
    rows = []
    for task in services.periodic_job_list():
        form = (bound or {}).get(task.pk)
        if form is None and can_edit:
            form = PeriodicJobForm(initial=PeriodicJobForm.initial_for(task), prefix=f"job{task.pk}")
        rows.append(
            {
                "task": task,
                "schedule": services.schedule_label(task),
                "safety": services.is_safety_tick(task),
                "form": form,
            }
        )
    return rows


@require_GET
@role_required(VIEWER)
def periodic_job_list(request: HttpRequest) -> HttpResponse:
    """mdefleet's periodic jobs: schedule, enabled, last run; an admin edits them in place."""
    return render(request, "mdefleet/periodic_jobs.html", {"rows": _rows(request), "current": "periodic-jobs"})


@require_POST
@role_required(ADMIN)
def periodic_job_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change one job's interval/crontab and enabled (audited); errors come back beside its fields."""
    task = PeriodicTask.objects.filter(pk=pk, name__startswith=services.PREFIX).first()
    if task is None:
        raise Http404("No such periodic job.")
    form = PeriodicJobForm(request.POST, prefix=f"job{task.pk}")
    if form.is_valid():
        try:
            services.periodic_job_update(actor=Actor.from_request(request), task=task, **form.update_kwargs())
        except services.PeriodicJobInvalid as exc:
            form_errors_attach(form, exc.errors)
        else:
            messages.success(request, f"{task.name} saved.")
            return redirect("deployments:periodic-jobs")
    context = {"rows": _rows(request, {task.pk: form}), "current": "periodic-jobs"}
    return render(request, "mdefleet/periodic_jobs.html", context, status=400)


@require_GET
@role_required(VIEWER)
def agents_expiring(request: HttpRequest) -> HttpResponse:
    """Hosts whose agent version has expired or expires within 30 days (the fleet page's panel, or a page)."""
    today = timezone.localdate()
    hosts = expiring_hosts(today=today)
    context = {"hosts": hosts, "warn_days": WARN_DAYS, "today": today, "count": len(hosts)}
    if htmx_target(request) is not None:
        context.update(hosts=hosts[:EXPIRING_PANEL_ROWS], more=max(0, len(hosts) - EXPIRING_PANEL_ROWS))
        return render(request, "deployments/partials/agents_expiring_panel.html", context)
    return render(request, "deployments/agents_expiring.html", context)
