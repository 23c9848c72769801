"""Profile pages: the list, a new profile, and the profile editor with its sections.

Each section of the editor is a fragment (templates/deployments/partials/profile_*.html) with its own
form posting to its own URL. Without JavaScript a post saves and redirects back to the page (or
re-renders it with the errors, status 400); with htmx the section swaps itself and the sections that
depend on it (warnings, recommendations, preview) follow out of band. Nothing here ever reads the
onboarding package's text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deployments import cron
from deployments import managed_settings as ms
from deployments.forms.profiles import (
    CarriedExclusionFormSet,
    ManagedJsonForm,
    ManagedSettingsForm,
    OnboardingUploadForm,
    ProfileFilterSet,
    ProfileGeneralForm,
    SchedulesForm,
    carried_initial,
    carried_rows,
)
from deployments.models import Profile
from deployments.services.profiles import (
    ProfileInvalid,
    profile_adopt_recommendation,
    profile_create,
    profile_set_onboarding,
    profile_update,
)
from mdefleet.audit import Actor
from mdefleet.roles import ADMIN, VIEWER, has_role
from mdefleet.views import form_errors_attach, role_required

PARTIALS = "deployments/partials"
# Sections that show values derived from others, re-rendered out of band after a change.
DEPENDENTS = {
    "general": ("warnings", "preview"),
    "onboarding": (),
    "settings": ("recommendations", "warnings", "preview"),
    "recommendations": ("settings", "warnings", "preview"),
    "exclusions": ("warnings", "preview"),
    "schedules": ("warnings",),
}
PAGE_SIZE = 50


# --- list and new --------------------------------------------------------------------------------


@require_GET
@role_required(VIEWER)
def profile_list(request: HttpRequest) -> HttpResponse:
    """Every profile with its channel, tenant and how much of the recommended hardening it adopts."""
    filterset = ProfileFilterSet(request.GET or None, queryset=Profile.objects.defer("onboarding_encrypted"))
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    for profile in page.object_list:
        recs = ms.recommendations(profile.managed_settings or {})
        rows.append(
            {
                "profile": profile,
                "adopted": sum(rec.adopted for rec in recs),
                "recommended": len(recs),
                "warnings": len(ms.profile_warnings(profile)),
            }
        )
    context = {"filterset": filterset, "page": page, "rows": rows}
    if getattr(request, "htmx", None) and request.htmx.target == "profile-table":
        return render(request, f"{PARTIALS}/profile_table.html", context)
    return render(request, "deployments/profile_list.html", context)


@require_http_methods(["GET", "POST"])
@role_required(ADMIN)
def profile_new(request: HttpRequest) -> HttpResponse:
    """A new profile: name, channel, pin, proxy; settings start from the recommended baseline."""
    form = ProfileGeneralForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            profile = profile_create(actor=Actor.from_request(request), data=form.cleaned_data)
        except ProfileInvalid as exc:
            form_errors_attach(form, exc.errors)
        else:
            messages.success(request, f"Profile {profile.name} created with the recommended settings.")
            return redirect("deployments:profile-detail", pk=profile.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "deployments/profile_new.html", {"form": _redact_proxy(form)}, status=status)


# --- the editor ----------------------------------------------------------------------------------


def _profile(pk: int) -> Profile:
    return get_object_or_404(Profile.objects.defer("onboarding_encrypted"), pk=pk)


def _redact_proxy(form: ProfileGeneralForm) -> ProfileGeneralForm:
    """A refused form is shown again; a proxy password typed into it is not."""
    value = form.data.get("proxy", "")
    if value and ms.redact_proxy(value) != value:
        form.data = form.data.copy()
        form.data["proxy"] = ms.redact_proxy(value)
    return form


def _readonly(form: Any) -> Any:
    for field in form.fields.values():
        field.disabled = True
    return form


def _settings_errors(errors: dict[str, list[str]], draft: dict[str, Any] | None) -> dict[str, Any]:
    """Settings errors as a list with paths, and by form field for showing next to the field."""
    listed, by_field = [], {}
    for path, messages_ in errors.items():
        field = ManagedSettingsForm.field_for_path(path, draft)
        for message in messages_:
            listed.append({"path": path, "message": message, "field": field})
            if field:
                by_field.setdefault(field, []).append(f"{path}: {message}")
    return {"settings_errors": listed, "settings_field_errors": by_field}


def _context(request: HttpRequest, profile: Profile, **overrides: Any) -> dict[str, Any]:
    """Everything the editor shows; ``overrides`` replace a section's forms (bound, with errors)."""
    can_admin = has_role(request.user, ADMIN)
    settings = profile.managed_settings or {}
    context: dict[str, Any] = {
        "profile": profile,
        "can_admin": can_admin,
        "general_form": ProfileGeneralForm(initial=ProfileGeneralForm.initial_for(profile)),
        "onboarding_form": OnboardingUploadForm(),
        "settings_form": ManagedSettingsForm(initial=ManagedSettingsForm.initial_for(settings)),
        "json_form": ManagedJsonForm(initial={"document": ms.dump_managed_json(settings)}),
        "settings_errors": [],
        "settings_field_errors": {},
        "exclusions_formset": CarriedExclusionFormSet(
            initial=carried_initial(profile.carried_exclusions or []), prefix="exclusions"
        ),
        "schedules_form": SchedulesForm(initial=SchedulesForm.initial_for(profile)),
        "schedule_draft": None,
        "mdatp_processes": [ms.MDATP_SBIN + name for name in ms.MDATP_PROCESSES],
        "mdatp_paths": ms.MDATP_PATHS,
        "managed_json_path": ms.MANAGED_JSON_PATH,
        "cron_file_path": cron.CRON_FILE_PATH,
        "settings_check": None,
        "exclusions_errors": [],
        "raw_open": False,
        "saved": None,
        "message": "",
    }
    context.update(overrides)
    settings_form = context["settings_form"]
    field_errors = context["settings_field_errors"]
    context["settings_fields"] = [(settings_form[name], field_errors.get(name, [])) for name in settings_form.fields]
    if not can_admin:
        for key in ("general_form", "settings_form", "json_form", "schedules_form"):
            _readonly(context[key])
        for form in context["exclusions_formset"].forms:
            _readonly(form)
    context.update(_derived(profile, context["schedule_draft"]))
    return context


def _derived(profile: Profile, schedule_draft: dict[str, str] | None) -> dict[str, Any]:
    """Values computed from the saved profile (or a schedule draft being previewed)."""
    settings = profile.managed_settings or {}
    schedules = schedule_draft or {
        "scan_cron": profile.scan_cron,
        "scan_type": profile.scan_type,
        "update_cron": profile.update_cron,
    }
    now = timezone.localtime()
    scan_check = cron.check_cron(schedules["scan_cron"]) if schedules["scan_cron"] else None
    update_check = cron.check_cron(schedules["update_cron"]) if schedules["update_cron"] else None
    preview_profile = _CronView(profile.name, schedules)
    return {
        "recommendations": ms.recommendations(settings),
        "warnings": ms.profile_warnings(profile),
        "notes": ms.notes(settings),
        "managed_json": ms.render_managed_json(profile),
        "scan_check": scan_check,
        "update_check": update_check,
        "scan_next": _next(schedules["scan_cron"], now),
        "update_next": _next(schedules["update_cron"], now),
        "cron_preview": cron.cron_lines(preview_profile)
        if not any(check and not check.ok for check in (scan_check, update_check))
        else None,
    }


class _CronView:
    """A profile-like object for previewing cron lines of unsaved schedules."""

    def __init__(self, name: str, schedules: dict[str, str]) -> None:
        self.name = name
        self.scan_cron = schedules["scan_cron"]
        self.scan_type = schedules["scan_type"]
        self.update_cron = schedules["update_cron"]


def _next(expression: str, now: datetime) -> list[datetime]:
    return cron.next_runs(expression, now.replace(tzinfo=None), 3) if expression else []


def _render_section(request: HttpRequest, section: str, context: dict[str, Any], *, oob: bool = False) -> str:
    return render_to_string(f"{PARTIALS}/profile_{section}.html", {**context, "oob": oob}, request=request)


def _respond(
    request: HttpRequest, profile: Profile, section: str, *, ok: bool, message: str = "", **overrides: Any
) -> HttpResponse:
    """After a section's post: its fragment (+ dependents) for htmx, else a redirect or the page."""
    if request.htmx:
        context = _context(request, profile, saved=section if ok and message else None, message=message, **overrides)
        html = _render_section(request, section, context)
        if ok:
            html += "".join(_render_section(request, other, context, oob=True) for other in DEPENDENTS[section])
        # htmx swaps only 2xx answers, so a refused form answers 200 with its errors in place.
        return HttpResponse(html)
    if ok:
        if message:
            messages.success(request, message)
        return redirect(reverse("deployments:profile-detail", args=[profile.pk]) + f"#profile-{section}")
    context = _context(request, profile, **overrides)
    return render(request, "deployments/profile_detail.html", context, status=400)


@require_GET
@role_required(VIEWER)
def profile_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor (read-only below the admin role)."""
    profile = _profile(pk)
    return render(request, "deployments/profile_detail.html", _context(request, profile))


@require_POST
@role_required(ADMIN)
def profile_general(request: HttpRequest, pk: int) -> HttpResponse:
    """Save name, description, channel, version pin and proxy."""
    profile = _profile(pk)
    form = ProfileGeneralForm(request.POST)
    if form.is_valid():
        try:
            profile = profile_update(actor=Actor.from_request(request), profile=profile, data=form.cleaned_data)
        except ProfileInvalid as exc:
            form_errors_attach(form, exc.errors)
        else:
            return _respond(request, profile, "general", ok=True, message="Saved.")
    return _respond(request, profile, "general", ok=False, general_form=_redact_proxy(form))


@require_POST
@role_required(ADMIN)
def profile_onboarding(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload the onboarding package; only its name, org id and digest are ever shown."""
    profile = _profile(pk)
    form = OnboardingUploadForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["package"]
        if upload.size > 1024 * 1024:
            form.add_error("package", "The file is larger than 1 MB; an onboarding package is a few KB.")
        else:
            try:
                profile = profile_set_onboarding(
                    actor=Actor.from_request(request), profile=profile, filename=upload.name, content=upload.read()
                )
            except ProfileInvalid as exc:
                form_errors_attach(form, exc.errors, {"onboarding": "package"})
            else:
                return _respond(
                    request, profile, "onboarding", ok=True, message=f"Package stored; organization {profile.org_id}."
                )
    return _respond(request, profile, "onboarding", ok=False, onboarding_form=form)


def _settings_refused(
    request: HttpRequest, profile: Profile, exc: ProfileInvalid, draft: dict[str, Any] | None, **forms_: Any
) -> HttpResponse:
    other = {key: value for key, value in exc.errors.items() if not key.startswith("managed_settings")}
    errors = exc.for_field("managed_settings")
    for key, messages_ in other.items():
        errors.setdefault(key, []).extend(messages_)
    return _respond(request, profile, "settings", ok=False, **_settings_errors(errors, draft), **forms_)


@require_POST
@role_required(ADMIN)
def profile_settings_form(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the common keys; the whole resulting document is validated."""
    profile = _profile(pk)
    form = ManagedSettingsForm(request.POST)
    if not form.is_valid():
        return _respond(request, profile, "settings", ok=False, settings_form=form)
    draft = form.apply_to(profile.managed_settings or {})
    try:
        profile = profile_update(actor=Actor.from_request(request), profile=profile, data={"managed_settings": draft})
    except ProfileInvalid as exc:
        return _settings_refused(request, profile, exc, draft, settings_form=form)
    return _respond(request, profile, "settings", ok=True, message="Managed settings saved.")


@require_POST
@role_required(ADMIN)
def profile_settings_raw(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the whole document from its text; refused entirely when any value is bad."""
    profile = _profile(pk)
    form = ManagedJsonForm(request.POST)
    text = request.POST.get("document", "")
    try:
        profile = profile_update(actor=Actor.from_request(request), profile=profile, data={"managed_settings": text})
    except ProfileInvalid as exc:
        draft, _ = ms.parse_managed_json(text)
        return _settings_refused(request, profile, exc, draft, json_form=form, raw_open=True)
    return _respond(request, profile, "settings", ok=True, message="Managed settings saved.")


@require_POST
@role_required(ADMIN)
def profile_settings_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Validate the document's text and list its problems and traps, saving nothing."""
    profile = _profile(pk)
    form = ManagedJsonForm(request.POST)
    text = request.POST.get("document", "")
    draft, problems = ms.check_managed_json(text)
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.path, []).append(problem.message)
    check = {
        "ok": not problems,
        "warnings": ms.warnings(draft, profile.proxy) if draft is not None else [],
    }
    context = _context(
        request, profile, json_form=form, raw_open=True, settings_check=check, **_settings_errors(errors, draft)
    )
    if request.htmx:
        return HttpResponse(_render_section(request, "settings", context))
    return render(request, "deployments/profile_detail.html", context)


@require_POST
@role_required(ADMIN)
def profile_adopt(request: HttpRequest, pk: int, recommendation_id: str) -> HttpResponse:
    """Adopt one recommendation of the hardening diff."""
    profile = _profile(pk)
    try:
        profile = profile_adopt_recommendation(
            actor=Actor.from_request(request), profile=profile, recommendation_id=recommendation_id
        )
    except ProfileInvalid as exc:
        if "recommendation" in exc.errors:
            return HttpResponse(" ".join(exc.errors["recommendation"]), status=404, content_type="text/plain")
        return _settings_refused(request, profile, exc, None)
    rule = ms.RULES_BY_ID[recommendation_id]
    return _respond(request, profile, "recommendations", ok=True, message=f"Adopted: {rule.title}.")


@require_POST
@role_required(ADMIN)
def profile_exclusions(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the exclusions carried over from the previous antivirus."""
    profile = _profile(pk)
    formset = CarriedExclusionFormSet(request.POST, prefix="exclusions")
    if formset.is_valid():
        rows, indexes = carried_rows(formset)
        try:
            profile = profile_update(
                actor=Actor.from_request(request), profile=profile, data={"carried_exclusions": rows}
            )
        except ProfileInvalid as exc:
            general: list[str] = []
            for key, messages_ in exc.for_field("carried_exclusions").items():
                form_index, field = _row_of(key, indexes)
                for message in messages_:
                    if form_index is None:
                        general.append(message)
                    else:
                        formset.forms[form_index].add_error(field, message)
            general += [m for key, ms_ in exc.errors.items() if not key.startswith("carried_exclusions") for m in ms_]
            return _respond(
                request, profile, "exclusions", ok=False, exclusions_formset=formset, exclusions_errors=general
            )
        else:
            return _respond(request, profile, "exclusions", ok=True, message="Exclusions saved.")
    return _respond(request, profile, "exclusions", ok=False, exclusions_formset=formset)


def _row_of(path: str, indexes: list[int]) -> tuple[int | None, str | None]:
    """``[2].value`` → (form index of saved row 2, "value")."""
    if not path.startswith("["):
        return None, None
    try:
        row = int(path[1:].split("]")[0])
    except ValueError:
        return None, None
    field = path.split("].", 1)[1] if "]." in path else None
    return (indexes[row] if row < len(indexes) else None), (field if field in ("kind", "value") else None)


def _schedules_draft(form: SchedulesForm) -> dict[str, str]:
    data = form.cleaned_data if form.is_valid() else {}
    return {
        "scan_cron": " ".join((data.get("scan_cron") or form.data.get("scan_cron", "")).split()),
        "scan_type": data.get("scan_type") or cron.DEFAULT_SCAN_TYPE,
        "update_cron": " ".join((data.get("update_cron") or form.data.get("update_cron", "")).split()),
    }


@require_POST
@role_required(ADMIN)
def profile_schedules(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the scan and update cron entries."""
    profile = _profile(pk)
    form = SchedulesForm(request.POST)
    if form.is_valid():
        try:
            profile = profile_update(actor=Actor.from_request(request), profile=profile, data=form.cleaned_data)
        except ProfileInvalid as exc:
            form_errors_attach(form, exc.errors)
        else:
            return _respond(request, profile, "schedules", ok=True, message="Schedules saved.")
    return _respond(request, profile, "schedules", ok=False, schedules_form=form, schedule_draft=_schedules_draft(form))


@require_POST
@role_required(ADMIN)
def profile_schedules_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Check the cron entries being typed and preview the cron file, saving nothing."""
    profile = _profile(pk)
    form = SchedulesForm(request.POST)
    context = _context(request, profile, schedules_form=form, schedule_draft=_schedules_draft(form))
    if request.htmx:
        return render(request, f"{PARTIALS}/profile_schedules_preview.html", context)
    return render(request, "deployments/profile_detail.html", context)


@require_GET
@role_required(VIEWER)
def profile_managed_json(request: HttpRequest, pk: int) -> HttpResponse:
    """The mdatp_managed.json this profile delivers, as a download."""
    profile = _profile(pk)
    response = HttpResponse(ms.render_managed_json(profile), content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="mdatp_managed.json"'
    return response


@require_GET
@role_required(VIEWER)
def profile_cron_file(request: HttpRequest, pk: int) -> HttpResponse:
    """The /etc/cron.d/mdatp file this profile delivers, as text."""
    profile = _profile(pk)
    return HttpResponse(cron.cron_lines(profile), content_type="text/plain; charset=utf-8")
