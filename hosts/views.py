"""Inventory pages. Each URL renders a full page, or for an htmx request only the fragment it targets.

Every page works without JavaScript (plain links and form posts); htmx only saves the reload.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling, trigger_client_event

from hosts import importing, selectors, services
from hosts.choices import DiscoveryStatus, JobKind, RunStatus
from hosts.filters import HostFilterSet
from hosts.forms import CredentialForm, DiscoverForm, HostKeyForm, ImportForm, WayBackForm
from hosts.models import Discovery, Host
from mdefleet.audit import Actor
from mdefleet.roles import ADMIN, OPERATOR, VIEWER
from mdefleet.views import htmx_target, role_required

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
DISCOVERY_HOSTS_PAGE_SIZE = 100
# Fired when a discovery finishes, so the fleet table and host pages refresh themselves.
DISCOVERY_FINISHED_EVENT = "discoveryFinished"


def _page_size(request: HttpRequest) -> int:
    try:
        size = int(request.GET.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


# --- fleet ------------------------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def fleet(request: HttpRequest) -> HttpResponse:
    """The host table with filters, pagination and the discover selection."""
    filterset = HostFilterSet(request.GET or None, queryset=selectors.host_list(), request=request)
    paginator = Paginator(filterset.qs, _page_size(request))
    page = paginator.get_page(request.GET.get("page"))
    context: dict[str, Any] = {
        "filterset": filterset,
        "page": page,
        "hosts": list(page.object_list),
        "page_range": paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "page_size": paginator.per_page,
        "page_sizes": PAGE_SIZES,
    }
    if htmx_target(request) == "fleet-table":
        return render(request, "hosts/partials/fleet_table.html", context)
    running = selectors.discovery_list().exclude(status=DiscoveryStatus.DONE).first()
    if running is not None:
        context.update(_progress_context(running))
    return render(request, "hosts/fleet.html", context)


@require_POST
@role_required(OPERATOR)
def discover(request: HttpRequest) -> HttpResponse:
    """Start a discovery over the ticked hosts or over every host the posted filter matches."""
    form = DiscoverForm(request.POST)
    fallback = reverse("hosts:fleet")
    if not form.is_valid():
        return HttpResponseBadRequest("Invalid selection.")
    if form.cleaned_data["all_matching"]:
        filterset = HostFilterSet(request.POST, queryset=Host.objects.all())
        if not filterset.is_valid():
            return _discover_refused(request, "The filter is not valid; nothing was started.", fallback)
        hosts = list(filterset.qs.only("id"))
    else:
        hosts = list(Host.objects.filter(pk__in=form.cleaned_data["ids"]).only("id"))
    if not hosts:
        return _discover_refused(request, "Select at least one host to discover.", fallback)
    discovery = services.discovery_start(actor=Actor.from_request(request), hosts=hosts)
    if request.htmx:
        return render(request, "hosts/partials/discovery_progress.html", _progress_context(discovery))
    messages.success(request, f"Discovery #{discovery.pk} started on {len(hosts)} host(s).")
    return redirect("hosts:discovery", pk=discovery.pk)


def _discover_refused(request: HttpRequest, message: str, fallback: str) -> HttpResponse:
    if request.htmx:
        return render(request, "partials/flash.html", {"level": "error", "message": message})
    messages.error(request, message)
    return redirect(_safe_next(request, fallback))


# --- discoveries ------------------------------------------------------------------------------


def _progress_context(discovery: Discovery) -> dict[str, Any]:
    progress = services.discovery_progress(discovery=discovery)
    total = progress["total"] or 1
    counts = progress["counts"]
    finished = progress["finished"] or discovery.status == DiscoveryStatus.DONE
    return {
        "discovery": discovery,
        "progress": progress,
        "finished": finished,
        "ok": counts.get(RunStatus.OK, 0),
        "failed": counts.get(RunStatus.FAILED, 0),
        "running": counts.get(RunStatus.RUNNING, 0),
        "pending": counts.get(RunStatus.PENDING, 0),
        "ok_pct": round(100 * counts.get(RunStatus.OK, 0) / total, 1),
        "failed_pct": round(100 * counts.get(RunStatus.FAILED, 0) / total, 1),
        "done_pct": round(100 * progress["done"] / total),
        "poll_url": reverse("hosts:discovery", args=[discovery.pk]),
    }


@require_GET
@role_required(VIEWER)
def discovery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A discovery's progress and per-host results; its progress fragment polls until finished (then 286)."""
    discovery = get_object_or_404(selectors.discovery_list(), pk=pk)
    context = _progress_context(discovery)
    target = htmx_target(request)
    with_hosts = target is None or request.GET.get("with") == "hosts"
    if with_hosts:
        paginator = Paginator(selectors.discovery_host_runs(discovery=discovery), DISCOVERY_HOSTS_PAGE_SIZE)
        runs_page = paginator.get_page(request.GET.get("page"))
        context["runs_page"] = runs_page
        context["runs_page_range"] = paginator.get_elided_page_range(runs_page.number, on_each_side=2, on_ends=1)
        # The page's progress fragment brings the visible page of hosts along (out of band) as it polls.
        context["poll_url"] = f"{context['poll_url']}?with=hosts&page={runs_page.number}"
    if target is not None:
        context["oob_hosts"] = with_hosts
        response = render(request, "hosts/partials/discovery_progress.html", context)
        if context["finished"]:
            response.status_code = HttpResponseStopPolling.status_code
            trigger_client_event(response, DISCOVERY_FINISHED_EVENT, {"id": discovery.pk})
        return response
    return render(request, "hosts/discovery_detail.html", context)


# --- hosts ------------------------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def host_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Facts, host key, eligibility, agent state, snapshots and the latest discovery's step results."""
    host = get_object_or_404(selectors.host_list(), pk=pk)
    snapshots = list(selectors.host_snapshots(host=host)[:21])
    latest = snapshots[0] if snapshots else None
    context: dict[str, Any] = {
        "host": host,
        "snapshot": latest,
        "earlier_snapshots": snapshots[1:],
        "filesystems": selectors.snapshot_filesystems(snapshot=latest) if latest else [],
        "top_processes": selectors.snapshot_processes(processes=latest.top_processes) if latest else [],
        "agent_processes": selectors.snapshot_processes(processes=latest.agent_processes) if latest else [],
        "checks": selectors.host_latest_checks(host=host),
        "diagnosis": selectors.latest_diagnoses([host.pk]).get(host.pk),
    }
    active = (
        selectors.discovery_list()
        .filter(host_runs__host=host, host_runs__status__in=[RunStatus.PENDING, RunStatus.RUNNING])
        .first()
    )
    if active is not None:
        context.update(_progress_context(active))
    return render(request, "hosts/host_detail.html", context)


def _host_job(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    """Start a look-only job (snapshot, health, diagnosis) on one host; htmx gets the progress panel."""
    host = get_object_or_404(Host.objects.only("id", "name"), pk=pk)
    job = services.host_job_start(actor=Actor.from_request(request), hosts=[host], kind=kind)
    if request.htmx:
        return render(request, "hosts/partials/discovery_progress.html", _progress_context(job))
    messages.success(request, f"{job.get_kind_display()} #{job.pk} started on {host.name}.")
    return redirect("hosts:host", pk=host.pk)


@require_POST
@role_required(OPERATOR)
def host_snapshot(request: HttpRequest, pk: int) -> HttpResponse:
    """Take an ad-hoc resource snapshot of the host now (facts, then the multi-sample snapshot)."""
    return _host_job(request, pk, JobKind.SNAPSHOT)


@require_POST
@role_required(OPERATOR)
def host_health(request: HttpRequest, pk: int) -> HttpResponse:
    """Read ``mdatp health`` now and update the agent's state on the host."""
    return _host_job(request, pk, JobKind.HEALTH)


@require_POST
@role_required(OPERATOR)
def host_diagnose(request: HttpRequest, pk: int) -> HttpResponse:
    """Run the seed's high-CPU investigation on the host; the result shows on the host page."""
    return _host_job(request, pk, JobKind.DIAGNOSE)


@require_GET
@role_required(VIEWER)
def host_check_output(request: HttpRequest, pk: int, check_id: int) -> HttpResponse:
    """One step's output (escaped by the template, at most 64 KB shown), fetched on demand."""
    host = get_object_or_404(Host.objects.only("id", "name"), pk=pk)
    check = get_object_or_404(host.checks.all(), pk=check_id)
    output, truncated = selectors.check_output_shown(check=check)
    context = {"host": host, "check": check, "output": output, "truncated": truncated}
    if htmx_target(request) is not None:
        return render(request, "hosts/partials/check_output.html", context)
    return render(request, "hosts/check_output.html", context)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def host_key_reset(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-pin a host key after a confirmation: pin a pasted key, or forget it and trust the next one."""
    host = get_object_or_404(Host, pk=pk)
    form = HostKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        actor = Actor.from_request(request)
        if form.cleaned_data["host_key"]:
            services.host_pin_key(actor=actor, host=host, host_key=form.cleaned_data["host_key"], reason="re-pin")
            messages.success(request, f"Pinned {host.host_key_fingerprint} for {host.name}.")
        else:
            services.host_key_clear(actor=actor, host=host)
            messages.success(request, f"Forgot the key of {host.name}; its next contact pins the key it presents.")
        return redirect("hosts:host", pk=host.pk)
    return render(request, "hosts/host_key.html", {"host": host, "form": form})


# --- import -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
def import_hosts(request: HttpRequest) -> HttpResponse:
    """Upload or paste an inventory; all rows are validated first, and any bad row imports nothing."""
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    errors: list[importing.RowError] = []
    if request.method == "POST" and form.is_valid():
        parsed = importing.parse_inventory(content=form.raw_content(), fmt=form.cleaned_data["format"])
        errors = parsed.errors
        if parsed.ok:
            try:
                hosts = services.host_import(
                    actor=Actor.from_request(request),
                    rows=parsed.rows,
                    trust_on_first_use=form.cleaned_data["trust_on_first_use"],
                )
            except IntegrityError:
                errors = [importing.RowError(0, "address", "a host of the file was added meanwhile; try again")]
            else:
                messages.success(request, f"Imported {len(hosts)} host(s).")
                return redirect("hosts:fleet")
    context = {
        "form": form,
        "errors": errors[:500],
        "error_count": len(errors),
        "columns": importing.COLUMNS,
        "max_rows": importing.MAX_ROWS,
    }
    return render(request, "hosts/import.html", context, status=200)


# --- credentials ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def credentials(request: HttpRequest) -> HttpResponse:
    """List credentials and add one; secrets are write-only and never rendered back."""
    form = CredentialForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        credential = services.credential_create(
            actor=Actor.from_request(request),
            name=form.cleaned_data["name"],
            kind=form.cleaned_data["kind"],
            secret=form.cleaned_data["secret"],
            passphrase=form.cleaned_data["passphrase"] or "",
        )
        messages.success(request, f"Credential {credential.name} stored.")
        return redirect("hosts:credentials")
    return render(request, "hosts/credentials.html", {"form": form, "credentials": selectors.credential_list()})


# --- the way back: offboard / uninstall ------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required(OPERATOR)
def way_back(request: HttpRequest) -> HttpResponse:
    """Confirm and start offboarding or uninstalling the hosts ticked on the fleet page."""
    if request.method == "GET" and request.htmx:
        # Reached from the fleet form's htmx submit: load the confirmation as a whole page.
        return HttpResponseClientRedirect(request.get_full_path())
    if request.method == "GET":
        ids = ",".join(request.GET.getlist("ids"))
        form = WayBackForm(initial={"ids": ids})
    else:
        form = WayBackForm(request.POST, request.FILES)
        ids = request.POST.get("ids", "")
    hosts: list[Host] = []
    try:
        wanted = sorted({int(part) for part in ids.split(",") if part.strip()})
        hosts = list(Host.objects.filter(pk__in=wanted).order_by("name")[:500])
    except ValueError:
        form.add_error(None, "The selection is not valid.")
    if request.method == "POST" and form.is_valid():
        try:
            job = services.hosts_way_back_start(
                actor=Actor.from_request(request),
                hosts=Host.objects.filter(pk__in=form.cleaned_data["ids"]),
                kind=form.cleaned_data["mode"],
                offboarding_package=form.package_text(),
            )
        except (services.WayBackInvalid, ValidationError) as exc:
            form.add_error(None, str(exc.messages[0] if isinstance(exc, ValidationError) else exc))
        else:
            messages.success(request, f"{job.get_kind_display()} #{job.pk} started on {len(hosts)} host(s).")
            return redirect("hosts:discovery", pk=job.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "hosts/way_back.html", {"form": form, "hosts": hosts, "current": "fleet"}, status=status)
