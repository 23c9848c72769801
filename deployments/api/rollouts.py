"""REST API of rollouts: list, read, plan (create), preview, the actions, host runs and the dry run.

Reads need the viewer role; planning and actions need operator, approving needs approver. The
viewset shapes input and calls the services: refused input answers 400 with messages by field,
an action that does not apply to the rollout's state answers 409 with the reason.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments import idempotency, selectors
from deployments.api.schedules import ScheduleInputSerializer, WindowSerializer, WindowStateSerializer
from deployments.choices import HostRunStatus, RolloutStatus, WaveStatus
from deployments.filters import HostRunFilterSet, RolloutFilterSet
from deployments.forms.rollouts import DEFAULT_PLAN
from deployments.models import HostRun, Profile, Rollout, StepResult, Wave
from deployments.services import rollouts as services
from deployments.services import schedules as schedule_services
from hosts.api.pagination import StandardPagination
from hosts.choices import StepStatus
from mdefleet.audit import Actor
from mdefleet.errors import Conflict
from mdefleet.roles import APPROVER, OPERATOR

# The service names the host selection "hosts"; the API calls the field "selection".
ERROR_KEYS = {"hosts": "selection"}


def _invalid(exc: services.RolloutInvalid, wave_plan: Any = None) -> ValidationError:
    """The service's refusal as a 400 with field paths (``wave 3: ...`` of a listed plan → ``wave_plan[2]``)."""
    errors: dict[str, Any] = {}
    for key, messages in exc.errors.items():
        for message in messages:
            match = re.match(r"wave (\d+): ", message)
            path = ERROR_KEYS.get(key, key)
            if key == "wave_plan" and match and isinstance(wave_plan, list):
                path = f"wave_plan[{int(match.group(1)) - 1}]"
            errors.setdefault(path, []).append(message)
    return ValidationError(errors)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


# --- shapes --------------------------------------------------------------------------------------


def _enum(choices: Any) -> dict[str, Any]:
    return {
        "type": "string",
        "enum": list(choices.values),
        "description": "; ".join(f"`{value}`: {label}" for value, label in choices.choices),
    }


# Named enum components of their own: every model here has a "status" with a different choice set.
@extend_schema_field(_enum(RolloutStatus), component_name="RolloutStatusEnum")
class RolloutStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=RolloutStatus.choices, **kwargs)


@extend_schema_field(_enum(WaveStatus), component_name="WaveStatusEnum")
class WaveStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=WaveStatus.choices, **kwargs)


@extend_schema_field(_enum(HostRunStatus), component_name="HostRunStatusEnum")
class HostRunStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=HostRunStatus.choices, **kwargs)


@extend_schema_field(_enum(StepStatus), component_name="StepResultStatusEnum")
class StepStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=StepStatus.choices, **kwargs)


class RunCountsSerializer(serializers.Serializer):
    """Host runs per status."""

    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    ok = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    total = serializers.IntegerField()


class WaveSerializer(serializers.ModelSerializer):
    """One wave: planned size, status, host counts, and its gate verdict with the report that decided it."""

    number = serializers.SerializerMethodField(help_text="1 for the first wave")
    status = WaveStatusField(read_only=True)
    counts = serializers.SerializerMethodField()
    gate_report = serializers.JSONField(
        read_only=True,
        help_text="{verdict, reasons, numbers: {hosts, failed, allowed_failed, failed_total, "
        "allowed_failed_total, regressions: {metric: {threshold, over, missing, worst, hosts_over}}}}",
    )
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Wave
        fields = [
            "id",
            "index",
            "number",
            "planned_size",
            "status",
            "gate_verdict",
            "gate_report",
            "started_at",
            "finished_at",
            "approved_by",
            "approved_at",
            "counts",
        ]

    def get_number(self, wave: Wave) -> int:
        return wave.index + 1

    @extend_schema_field(RunCountsSerializer)
    def get_counts(self, wave: Wave) -> dict[str, int]:
        counts = self.context.get("wave_counts", {}).get(wave.index)
        return counts or {s: 0 for s in (*selectors.RUN_STATUSES, "total")}


class RolloutSerializer(serializers.ModelSerializer):
    """A rollout with its host counts per status and its waves (each with counts and gate verdict)."""

    profile_name = serializers.CharField(source="profile.name", read_only=True)
    status = RolloutStatusField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    counts = serializers.SerializerMethodField()
    waves = serializers.SerializerMethodField()
    excluded_count = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()
    window = serializers.SerializerMethodField(help_text="The schedule's state now")
    maintenance_windows = WindowSerializer(many=True, read_only=True)
    blackout_dates = serializers.ListField(child=serializers.DateField(), read_only=True)

    class Meta:
        model = Rollout
        fields = [
            "id",
            "name",
            "profile",
            "profile_name",
            "ticket",
            "status",
            "halt_reason",
            "current_wave",
            "next_action_at",
            "selection",
            "wave_plan",
            "gates",
            "soak_seconds",
            "settle_seconds",
            "auto_promote",
            "approval_timeout_seconds",
            "start_at",
            "start_before",
            "schedule_timezone",
            "maintenance_windows",
            "blackout_dates",
            "window",
            "excluded_count",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
            "counts",
            "waves",
            "url",
            "page_url",
        ]
        read_only_fields = fields

    @extend_schema_field(RunCountsSerializer)
    def get_counts(self, rollout: Rollout) -> dict[str, int]:
        return getattr(rollout, "counts", {})

    @extend_schema_field(WaveSerializer(many=True))
    def get_waves(self, rollout: Rollout) -> list[dict[str, Any]]:
        context = {**self.context, "wave_counts": getattr(rollout, "wave_counts", {})}
        return WaveSerializer(rollout.waves.all(), many=True, context=context).data

    @extend_schema_field(WindowStateSerializer)
    def get_window(self, rollout: Rollout) -> dict[str, Any]:
        from deployments.services.schedules import rollout_window_state

        state = rollout_window_state(rollout)
        return {key: state[key] for key in WindowStateSerializer().fields}

    def get_excluded_count(self, rollout: Rollout) -> int:
        return len(rollout.excluded_hosts or [])

    def get_url(self, rollout: Rollout) -> str:
        return reverse("deployments-api:rollout-detail", args=[rollout.pk])

    def get_page_url(self, rollout: Rollout) -> str:
        return reverse("deployments:rollout", args=[rollout.pk])


class ExcludedHostSerializer(serializers.Serializer):
    """A chosen host left out of the plan, with why."""

    host_id = serializers.IntegerField()
    name = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())


class RolloutDetailSerializer(RolloutSerializer):
    """A rollout with, besides, every excluded host and its reasons."""

    excluded_hosts = ExcludedHostSerializer(many=True, read_only=True)

    class Meta(RolloutSerializer.Meta):
        fields = [*RolloutSerializer.Meta.fields, "excluded_hosts"]
        read_only_fields = fields


class RolloutPlanSerializer(serializers.Serializer):
    """The hosts and the wave plan of a rollout being planned."""

    selection = serializers.JSONField(
        help_text='How to choose hosts, all criteria together: {"ids": [1, 2]}, {"tags": ["web"]}, '
        '{"filter": {"distro": "rhel", "eligibility": "eligible", "tag": "web", "q": "db"}}'
    )
    wave_plan = serializers.JSONField(
        default=DEFAULT_PLAN,
        help_text='Wave sizes as text "1, 5%, 25%, 100%" or a list ["1", "5%", "100%"]: host counts or '
        "cumulative percentages",
    )

    def validate_selection(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("an object: ids, tags and/or filter")
        return value

    def validate_wave_plan(self, value: Any) -> Any:
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(e, str | int) and not isinstance(e, bool) for e in value)
        ):
            return value
        raise serializers.ValidationError('text "1, 5%, 100%" or a list of counts and percentages')


class RolloutCreateSerializer(ScheduleInputSerializer, RolloutPlanSerializer):
    """What planning a rollout takes; everything but the name, profile and selection has a default."""

    name = serializers.CharField(max_length=200, allow_blank=True)
    profile = serializers.PrimaryKeyRelatedField(queryset=Profile.objects.all())
    ticket = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    gates = serializers.JSONField(
        required=False,
        default=dict,
        help_text='{"max_failed_per_wave": {"value": 10, "unit": "pct"}, "max_failed_total": {"value": 5, '
        '"unit": "count"}, "regression": {"cpu_points": 25, "mem_mb": null}}; missing keys take the defaults, '
        "null means not gated",
    )
    soak_seconds = serializers.IntegerField(required=False, default=0)
    settle_seconds = serializers.IntegerField(required=False, default=60)
    auto_promote = serializers.BooleanField(required=False, default=True)
    approval_timeout_seconds = serializers.IntegerField(required=False, default=24 * 3600)

    def validate_gates(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("an object of gate settings")
        return value


class RolloutPreviewSerializer(serializers.Serializer):
    """The waves a selection would get, and every chosen host left out with its reasons."""

    plan = serializers.ListField(child=serializers.CharField())
    sizes = serializers.ListField(child=serializers.IntegerField())
    eligible_count = serializers.IntegerField()
    excluded = ExcludedHostSerializer(many=True)


class ConflictSerializer(serializers.Serializer):
    """Why the action does not apply to the rollout in its current state."""

    detail = serializers.CharField()


class HostRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()


class StepResultSerializer(serializers.ModelSerializer):
    """One step on one host: status, exit code, duration, reason; output (capped) and parsed data on request."""

    title = serializers.SerializerMethodField()
    status = StepStatusField(read_only=True)
    output = serializers.SerializerMethodField(
        required=False, help_text="At most 64 KB; only with ?output=1 (always on a single host run)"
    )
    output_truncated = serializers.SerializerMethodField(required=False)
    parsed = serializers.JSONField(read_only=True, required=False, help_text="Only with ?parsed=1")

    class Meta:
        model = StepResult
        fields = [
            "id",
            "step",
            "title",
            "status",
            "exit_code",
            "duration_ms",
            "command",
            "reason",
            "attempt",
            "finished_at",
            "output",
            "output_truncated",
            "parsed",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.context.get("with_output"):
            self.fields.pop("output")
            self.fields.pop("output_truncated")
        if not self.context.get("with_parsed"):
            self.fields.pop("parsed")

    def get_title(self, step: StepResult) -> str:
        return selectors.step_title(step.step)

    @extend_schema_field(OpenApiTypes.STR)
    def get_output(self, step: StepResult) -> str:
        return selectors.capped_output(getattr(step, "output_head", "") or "")[0]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_output_truncated(self, step: StepResult) -> bool:
        return (getattr(step, "output_chars", 0) or 0) > selectors.OUTPUT_SHOWN_MAX or selectors.capped_output(
            getattr(step, "output_head", "") or ""
        )[1]


class HostRunSerializer(serializers.ModelSerializer):
    """One host in one wave with its step results in order."""

    host = HostRefSerializer(read_only=True)
    status = HostRunStatusField(read_only=True)
    wave = serializers.SerializerMethodField(help_text="Wave number, 1 for the first")
    steps = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = HostRun
        fields = [
            "id",
            "host",
            "wave",
            "status",
            "attempt",
            "current_step",
            "reason",
            "started_at",
            "finished_at",
            "steps",
            "page_url",
        ]

    def get_wave(self, run: HostRun) -> int:
        return run.wave.index + 1

    @extend_schema_field(StepResultSerializer(many=True))
    def get_steps(self, run: HostRun) -> list[dict[str, Any]]:
        return StepResultSerializer(run.steps.all(), many=True, context=self.context).data

    def get_page_url(self, run: HostRun) -> str:
        return reverse("deployments:rollout-host", args=[run.rollout_id, run.pk])


class DryRunStdinSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Where the file lands")
    bytes = serializers.IntegerField()


class DryRunStepSerializer(serializers.Serializer):
    key = serializers.CharField()
    number = serializers.IntegerField()
    title = serializers.CharField()
    command = serializers.CharField(allow_null=True, help_text="null: judged locally, no command is sent")
    note = serializers.CharField(allow_blank=True)
    stdin = DryRunStdinSerializer(allow_null=True, help_text="A file delivered on standard input: never its content")
    delay_seconds = serializers.FloatField()
    error = serializers.CharField(allow_blank=True, help_text="Why the command cannot be built for this host")


class DryRunHostSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    host_id = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()
    wave = serializers.IntegerField()
    status = HostRunStatusField()
    discovered = serializers.BooleanField()
    steps = DryRunStepSerializer(many=True)


class DryRunSerializer(serializers.Serializer):
    """The commands the first ``limit`` hosts would be sent; nothing is run."""

    total = serializers.IntegerField(help_text="Host runs in the rollout")
    limit = serializers.IntegerField()
    hosts = DryRunHostSerializer(many=True)


def _dry_run_data(dry_run: selectors.DryRun) -> dict[str, Any]:
    return {
        "total": dry_run.total,
        "limit": dry_run.limit,
        "hosts": [
            {
                "run_id": h.run_id,
                "host_id": h.host_id,
                "name": h.name,
                "address": h.address,
                "wave": h.wave,
                "status": h.status,
                "discovered": h.discovered,
                "steps": [
                    {
                        "key": s.key,
                        "number": s.number,
                        "title": s.title,
                        "command": s.command,
                        "note": s.note,
                        "stdin": {"name": s.stdin_name, "bytes": s.stdin_bytes} if s.stdin_name else None,
                        "delay_seconds": s.delay_seconds,
                        "error": s.error,
                    }
                    for s in h.steps
                ],
            }
            for h in dry_run.hosts
        ],
    }


class RolloutReportSerializer(serializers.Serializer):
    """The pre/post comparison of a rollout: the same numbers as its page, printable report and CSV.

    A figure that is missing is null (never 0); p95 is by the nearest-rank method.
    """

    rollout = serializers.JSONField(help_text="{id, name, ticket, status}")
    summary = serializers.JSONField(
        help_text="{hosts, ok, failed, unfinished, cancelled, regressed, compared, no_data}"
    )
    gates = serializers.JSONField(help_text="Regression thresholds by metric (null: not gated)")
    rules = serializers.JSONField(
        help_text="Regression rules by metric: {allowed, critical, relative, baseline, unit, describe} or null"
    )
    distributions = serializers.JSONField(
        help_text="Per metric over every host: {label, unit, threshold, over, n, missing, median, p95, max, min, mean}"
    )
    waves = serializers.JSONField(
        help_text="Per wave: {id, number, status, verdict, reasons, numbers, regressions, hosts, regressed, "
        "distributions}"
    )
    worst = serializers.JSONField(help_text="Per metric the 10 largest changes: [{run_id, name, wave, value, url}]")
    groups = serializers.JSONField(help_text="{distro: [...], tag: [...]}: {group, hosts, regressed, medians}")
    hosts = serializers.JSONField(
        help_text="Per host run, the CSV's columns (pre, post, delta and delta % of each figure, the agent's "
        "share of CPU and RAM), plus over, marginal, missing, processes (new or grown), filesystems (most "
        "free space lost) and url"
    )
    failed_steps = serializers.JSONField(help_text="[{run_id, name, step, reason, url}]")


def report_data(report: dict[str, Any]) -> dict[str, Any]:
    """The report as the API gives it: per-host rows flat, like the CSV."""
    from deployments.report import host_api

    hosts = [host_api(h) for h in report["hosts"]]
    return {
        "rollout": report["rollout"],
        "summary": report["summary"],
        "gates": report["thresholds"],
        "rules": report["rules"],
        "distributions": report["distributions"],
        "waves": report["waves"],
        "worst": report["worst"],
        "groups": report["groups"],
        "hosts": hosts,
        "failed_steps": report["failed_steps"],
    }


class RolloutReportCsvView(APIView):
    """GET /api/v1/rollouts/{id}/report.csv: the per-host comparison as CSV (viewer)."""

    @extend_schema(
        summary="The per-host pre/post comparison as CSV (same numbers as .../report/)",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per host run")},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        from deployments.views.comparison import report_csv_response

        try:
            rollout = selectors.rollout_get(rollout_id=pk)
        except Rollout.DoesNotExist:
            raise NotFound("No such rollout.") from None
        return report_csv_response(rollout)


# --- the viewset ---------------------------------------------------------------------------------

FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Refused, nothing saved: a problem with every refused value and its path in `errors`, e.g. "
    '{path: "selection", message: "web-01 is already in rollout \'May patch\'"} or {path: "wave_plan[2]", ...}',
)
ACTION_RESPONSES = {
    200: RolloutDetailSerializer,
    409: OpenApiResponse(ConflictSerializer, description="The action does not apply in the rollout's state"),
}


def _action_schema(summary: str) -> Any:
    return extend_schema(summary=summary, request=None, responses=ACTION_RESPONSES)


@extend_schema_view(
    list=extend_schema(summary="Rollouts, newest first (filter by status, ticket, dates, search)"),
    retrieve=extend_schema(summary="One rollout with counts per status and per wave, gate verdicts and reports"),
    create=extend_schema(
        summary="Plan a rollout (draft); start it with POST .../start/",
        request=RolloutCreateSerializer,
        parameters=[
            OpenApiParameter(
                idempotency.HEADER,
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                required=False,
                description="Up to 255 printable ASCII characters, unique per request you mean (e.g. the ticket's "
                "sys_id plus an attempt number). The same key and body within 24 hours return the first answer "
                "again (header Idempotent-Replayed: true), never a second rollout; the same key with another "
                "body is a 409. Keys are per caller.",
            )
        ],
        responses={
            201: RolloutDetailSerializer,
            400: FIELD_ERRORS,
            409: OpenApiResponse(description="The Idempotency-Key was already used with a different body"),
        },
    ),
)
class RolloutViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Rollouts: plan, follow and steer them."""

    serializer_class = RolloutSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = RolloutFilterSet
    pagination_class = StandardPagination
    required_role = OPERATOR

    def get_queryset(self) -> Any:
        return selectors.rollout_list()

    def get_serializer_class(self) -> Any:
        if self.action == "list":
            return RolloutSerializer
        return RolloutDetailSerializer

    def _respond(self, rollout_id: int, status_code: int = 200) -> Response:
        rollout = selectors.rollouts_attach_counts(rollouts=[self.get_queryset().get(pk=rollout_id)])[0]
        body = RolloutDetailSerializer(rollout, context=self.get_serializer_context()).data
        return Response(body, status=status_code)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        rollouts = selectors.rollouts_attach_counts(rollouts=list(page or []))
        return self.get_paginated_response(RolloutSerializer(rollouts, many=True).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._respond(self.get_object().pk)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            key = idempotency.idempotency_key_clean(request.headers.get(idempotency.HEADER))
        except idempotency.IdempotencyKeyInvalid as exc:
            raise ValidationError({idempotency.HEADER: [str(exc)]}) from None
        if key is None:
            return self._plan(request)

        def create() -> tuple[int, Any, Rollout]:
            response = self._plan(request)
            return response.status_code, response.data, response.rollout  # type: ignore[attr-defined]

        try:
            outcome = idempotency.rollout_create_idempotent(
                user=request.user, key=key, data=request.data, create=create
            )
        except idempotency.IdempotencyKeyReused as exc:
            raise Conflict(str(exc), problem_type="idempotency-key-reused", title="Idempotency key reused") from None
        headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
        return Response(outcome.body, status=outcome.status, headers=headers)

    def _plan(self, request: Request) -> Response:
        form = RolloutCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            rollout = services.rollout_create(
                actor=Actor.from_request(request),
                name=data["name"],
                profile=data["profile"],
                ticket=data["ticket"],
                selection=data["selection"],
                wave_plan=data["wave_plan"],
                gates=data["gates"],
                soak_seconds=data["soak_seconds"],
                settle_seconds=data["settle_seconds"],
                auto_promote=data["auto_promote"],
                approval_timeout_seconds=data["approval_timeout_seconds"],
                schedule=data["schedule"],
            )
        except services.RolloutInvalid as exc:
            raise _invalid(exc, data["wave_plan"]) from None
        response = self._respond(rollout.pk, status.HTTP_201_CREATED)
        response.rollout = rollout  # type: ignore[attr-defined]
        return response

    @extend_schema(
        summary="Replace the schedule of a draft or scheduled rollout (start time, deadline, windows, blackouts)",
        description="The whole schedule is replaced: a field left out goes back to its default (no start time, no "
        "deadline, UTC, no window, no blackout date). Audited with the schedule before and after.",
        request=ScheduleInputSerializer,
        responses={
            200: RolloutDetailSerializer,
            400: FIELD_ERRORS,
            409: OpenApiResponse(ConflictSerializer, description="The rollout is past scheduling (started, ended)"),
        },
    )
    @action(detail=True, methods=["put"], url_path="schedule", filter_backends=[], pagination_class=None)
    def schedule(self, request: Request, pk: str | None = None) -> Response:
        rollout = self.get_object()
        form = ScheduleInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            schedule_services.rollout_schedule_set(
                actor=Actor.from_request(request), rollout=rollout, fields=form.validated_data["schedule"]
            )
        except schedule_services.ScheduleRefused as exc:
            raise Conflict(str(exc), problem_type="action-refused", title="Action refused") from None
        return self._respond(rollout.pk)

    @extend_schema(
        summary="The waves a selection and a plan would get, and the hosts left out (nothing is saved)",
        request=RolloutPlanSerializer,
        responses={200: RolloutPreviewSerializer, 400: FIELD_ERRORS},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def preview(self, request: Request) -> Response:
        form = RolloutPlanSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            preview = services.rollout_preview(
                selection=form.validated_data["selection"], wave_plan=form.validated_data["wave_plan"]
            )
        except services.RolloutInvalid as exc:
            raise _invalid(exc, form.validated_data["wave_plan"]) from None
        body = {
            "plan": preview["plan"],
            "sizes": preview["sizes"],
            "eligible_count": len(preview["eligible"]),
            "excluded": preview["excluded"],
        }
        return Response(RolloutPreviewSerializer(body).data)

    def _act(self, request: Request, service: Any) -> Response:
        rollout = self.get_object()
        try:
            service(actor=Actor.from_request(request), rollout=rollout)
        except services.ActionRefused as exc:
            raise Conflict(str(exc), problem_type="action-refused", title="Action refused") from None
        return self._respond(rollout.pk)

    @_action_schema("Start a draft rollout with its first wave")
    @action(detail=True, methods=["post"], url_path="start", filter_backends=[], pagination_class=None)
    def start(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, services.rollout_start)

    @_action_schema("Pause: no new host starts; running hosts finish their step")
    @action(detail=True, methods=["post"], url_path="pause", filter_backends=[], pagination_class=None)
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, services.rollout_pause)

    @_action_schema("Resume a paused rollout")
    @action(detail=True, methods=["post"], url_path="resume", filter_backends=[], pagination_class=None)
    def resume(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, services.rollout_resume)

    @_action_schema("Abort for good: hosts not started are cancelled")
    @action(detail=True, methods=["post"], url_path="abort", filter_backends=[], pagination_class=None)
    def abort(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, services.rollout_abort)

    @_action_schema("Approve the next wave (approver role)")
    @action(
        detail=True,
        methods=["post"],
        url_path="approve",
        filter_backends=[],
        pagination_class=None,
        required_role=APPROVER,
    )
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, services.rollout_approve)

    @_action_schema("Queue failed and cancelled hosts of the current waves again")
    @action(detail=True, methods=["post"], url_path="retry-failed", filter_backends=[], pagination_class=None)
    def retry_failed(self, request: Request, pk: str | None = None) -> Response:
        return self._act(request, services.rollout_retry_failed)

    @extend_schema(
        summary="The rollout's host runs with their step results (filter by status, wave, host)",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=selectors.RUN_STATUSES, description="Host run status"),
            OpenApiParameter("wave", OpenApiTypes.INT, description="Wave number, 1 for the first"),
            OpenApiParameter("q", OpenApiTypes.STR, description="Part of the host's name or address"),
            OpenApiParameter(
                "ordering",
                OpenApiTypes.STR,
                description="id, host, status, started_at or finished_at; prefix - for descending; comma-separated",
            ),
            OpenApiParameter("output", OpenApiTypes.BOOL, description="Include each step's output (≤ 64 KB)"),
            OpenApiParameter("parsed", OpenApiTypes.BOOL, description="Include each step's parsed data"),
        ],
        responses=HostRunSerializer(many=True),
    )
    @action(detail=True, methods=["get"], filter_backends=[], serializer_class=HostRunSerializer)
    def hosts(self, request: Request, pk: str | None = None) -> Response:
        rollout = self.get_object()
        with_output, with_parsed = _flag(request, "output"), _flag(request, "parsed")
        runs = selectors.host_runs_with_steps(rollout=rollout, with_output=with_output, with_parsed=with_parsed)
        filterset = HostRunFilterSet(request.query_params, queryset=runs, request=request)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        context = {**self.get_serializer_context(), "with_output": with_output, "with_parsed": with_parsed}
        return self.get_paginated_response(HostRunSerializer(page, many=True, context=context).data)

    @extend_schema(
        summary="Per host, the exact commands the steps would send, without running them",
        parameters=[
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"Hosts to show (default {selectors.DRY_RUN_DEFAULT})"
            )
        ],
        responses=DryRunSerializer,
    )
    @action(detail=True, methods=["get"], url_path="dry-run", filter_backends=[], pagination_class=None)
    def dry_run(self, request: Request, pk: str | None = None) -> Response:
        rollout = self.get_object()
        try:
            limit = int(request.query_params.get("limit", selectors.DRY_RUN_DEFAULT))
        except ValueError:
            raise ValidationError({"limit": ["a whole number"]}) from None
        dry_run = selectors.rollout_dry_run(rollout=rollout, limit=limit)
        return Response(_dry_run_data(dry_run))

    @extend_schema(
        summary="Pre/post comparison: summary, gates, per-wave distributions, worst hosts, per-host figures",
        responses=RolloutReportSerializer,
    )
    @action(detail=True, methods=["get"], url_path="report", filter_backends=[], pagination_class=None)
    def report(self, request: Request, pk: str | None = None) -> Response:
        from deployments.report import rollout_report

        return Response(report_data(rollout_report(self.get_object())))
