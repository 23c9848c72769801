"""The role walk: every URL pattern, every role, every method, against an explicit expectation table.

The walk introspects the URL map (pages, their htmx fragments, the API, format-suffix variants),
fills path parameters with real objects and sends each method as anonymous, a logged-in user with
no role, viewer, operator, approver and admin:

- below the URL's minimal role for that method: 403 (anonymous: a redirect to the login page for
  pages, 401/403 for the API), and no audit event, i.e. nothing changed;
- at or above it: neither refused (401/403) nor "method not allowed" nor a server error;
- a method the table does not list: 405 even for admin (so a view that quietly accepts a method
  fails here until its expectation is written down).

A URL pattern without an entry in EXPECTED fails ``test_every_url_has_a_role_expectation``:
a new URL is not done until its roles are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from mdefleet.models import AuditEvent
from mdefleet.roles import ADMIN, APPROVER, OPERATOR, ROLE_ORDER, VIEWER
from tests.factories import fernet_keys  # noqa: F401 (fixture)

V, OP, AP, A = VIEWER, OPERATOR, APPROVER, ADMIN
PUBLIC = "public"  # anyone, logged in or not (login, logout)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
HERE = "tests/mdefleet/test_role_walk.py"
HTML_UNDER_API = {"api-docs"}  # a page for people (login redirect), though its path starts with api/
NOT_FOUND_UNTIL_MADE = {"hosts-api:host-diagnosis"}  # 404 means "no diagnosis yet", not a bad fill

# URL name → minimal role per accepted method. A list of (path parameters, {method: role}) when a
# parameter changes the role (the rollout action page: approve needs an approver).
EXPECTED: dict[str, Any] = {
    # --- project ---
    "login": {"GET": PUBLIC, "POST": PUBLIC},
    "logout": {"POST": PUBLIC},
    "api-schema": {"GET": V},
    "api-docs": {"GET": V},
    "audit": {"GET": V},
    "service-accounts": {"GET": A, "POST": A},
    "service-account-revoke": {"POST": A},
    # --- inventory pages ---
    "hosts:fleet": {"GET": V},
    "hosts:discover": {"POST": OP},
    "hosts:way-back": {"GET": OP, "POST": OP},
    "hosts:discovery": {"GET": V},
    "hosts:host": {"GET": V},
    "hosts:check-output": {"GET": V},
    "hosts:host-key": {"GET": A, "POST": A},
    "hosts:import": {"GET": OP, "POST": OP},
    "hosts:credentials": {"GET": A, "POST": A},
    "hosts:host-snapshot": {"POST": OP},
    "hosts:host-health": {"POST": OP},
    "hosts:host-diagnose": {"POST": OP},
    # --- rollout pages ---
    "deployments:profile-list": {"GET": V},
    "deployments:profile-new": {"GET": A, "POST": A},
    "deployments:profile-detail": {"GET": V},
    "deployments:profile-general": {"POST": A},
    "deployments:profile-onboarding": {"POST": A},
    "deployments:profile-settings-form": {"POST": A},
    "deployments:profile-settings-raw": {"POST": A},
    "deployments:profile-settings-check": {"POST": A},
    "deployments:profile-adopt": {"POST": A},
    "deployments:profile-exclusions": {"POST": A},
    "deployments:profile-schedules": {"POST": A},
    "deployments:profile-schedules-preview": {"POST": A},
    "deployments:profile-managed-json": {"GET": V},
    "deployments:profile-cron-file": {"GET": V},
    "deployments:rollouts": {"GET": V},
    "deployments:rollout-new": {"GET": OP, "POST": OP},
    "deployments:rollout-preview": {"POST": OP},
    "deployments:rollout": {"GET": V},
    "deployments:rollout-dry-run": {"GET": V},
    "deployments:rollout-hosts": {"GET": V},
    "deployments:rollout-host": {"GET": V},
    "deployments:rollout-step-output": {"GET": V},
    "deployments:rollout-comparison": {"GET": V},
    "deployments:rollout-comparison-csv": {"GET": V},
    "deployments:rollout-comparison-host": {"GET": V},
    "deployments:rollout-report": {"GET": V},
    "deployments:rollout-schedule": {"GET": OP, "POST": OP},
    "deployments:schedule-preview": {"POST": OP},
    "deployments:periodic-jobs": {"GET": V},
    "deployments:periodic-job": {"POST": A},
    "deployments:agents-expiring": {"GET": V},
    # --- webhooks (admin) ---
    "webhooks:list": {"GET": A, "POST": A},
    "webhooks:detail": {"GET": A, "POST": A},
    "webhooks:rotate-secret": {"POST": A},
    "webhooks:delete": {"POST": A},
    "webhooks:ping": {"POST": A},
    "webhooks:redeliver": {"POST": A},
    "deployments:rollout-action": [
        ({"action": "start"}, {"GET": OP, "POST": OP}),
        ({"action": "pause"}, {"GET": OP, "POST": OP}),
        ({"action": "resume"}, {"GET": OP, "POST": OP}),
        ({"action": "retry-failed"}, {"GET": OP, "POST": OP}),
        ({"action": "approve"}, {"GET": AP, "POST": AP}),
        ({"action": "abort"}, {"GET": OP, "POST": OP}),
    ],
    # --- API ---
    "hosts-api:host-list": {"GET": V, "POST": OP},
    "hosts-api:host-detail": {"GET": V, "PATCH": OP, "DELETE": OP},
    "hosts-api:host-import-": {"POST": OP},  # the method is import_
    "hosts-api:host-discover": {"POST": OP},
    "hosts-api:host-offboard": {"POST": OP},
    "hosts-api:host-snapshots": {"GET": V},
    "hosts-api:host-checks": {"GET": V},
    "hosts-api:host-snapshot": {"POST": OP},
    "hosts-api:host-snapshot-many": {"POST": OP},
    "hosts-api:host-health": {"POST": OP},
    "hosts-api:host-health-many": {"POST": OP},
    "hosts-api:host-diagnose": {"POST": OP},
    "hosts-api:host-diagnose-many": {"POST": OP},
    "hosts-api:host-diagnosis": {"GET": V},
    "hosts-api:discovery-list": {"GET": V},
    "hosts-api:discovery-detail": {"GET": V},
    "hosts-api:credential-list": {"GET": A, "POST": A},
    "deployments-api:profile-list": {"GET": V, "POST": A},
    "deployments-api:profile-detail": {"GET": V, "PATCH": A},
    "deployments-api:profile-adopt": {"POST": A},
    "deployments-api:profile-files": {"GET": V},
    "deployments-api:profile-onboarding": {"POST": A},
    "deployments-api:profile-recommendations": {"GET": V},
    "deployments-api:rollout-list": {"GET": V, "POST": OP},
    "deployments-api:rollout-preview": {"POST": OP},
    "deployments-api:rollout-detail": {"GET": V},
    "deployments-api:rollout-start": {"POST": OP},
    "deployments-api:rollout-pause": {"POST": OP},
    "deployments-api:rollout-resume": {"POST": OP},
    "deployments-api:rollout-abort": {"POST": OP},
    "deployments-api:rollout-approve": {"POST": AP},
    "deployments-api:rollout-retry-failed": {"POST": OP},
    "deployments-api:rollout-schedule": {"PUT": OP},
    "deployments-api:rollout-hosts": {"GET": V},
    "deployments-api:rollout-dry-run": {"GET": V},
    "deployments-api:rollout-report": {"GET": V},
    "deployments-api:rollout-report-csv": {"GET": V},
    "audit-api:audit-event-list": {"GET": V},
    "audit-api:audit-event-detail": {"GET": V},
    "mdefleet-api:service-account-list": {"GET": A, "POST": A},
    "mdefleet-api:service-account-detail": {"GET": A},
    "mdefleet-api:service-account-revoke": {"POST": A},
    "webhooks-api:webhook-list": {"GET": A, "POST": A},
    "webhooks-api:webhook-detail": {"GET": A, "PUT": A, "PATCH": A, "DELETE": A},
    "webhooks-api:webhook-deliveries": {"GET": A},
    "webhooks-api:webhook-ping": {"POST": A},
    "webhooks-api:webhook-redeliver": {"POST": A},
    "webhooks-api:webhook-rotate-secret": {"POST": A},
}


# --- the URL map ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full name, its route text and the names of its path parameters."""

    name: str
    route: str
    params: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/") and self.name not in HTML_UNDER_API

    def __str__(self) -> str:
        return f"{self.name} ({self.route})"


def _params(pattern: Any) -> list[str]:
    regex = getattr(pattern, "regex", None)
    return list(regex.groupindex) if regex is not None else []


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "", params: tuple[str, ...] = ()) -> list[Route]:
    routes: list[Route] = []
    for entry in patterns:
        here = (*params, *_params(entry.pattern))
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            routes += _walk(entry.url_patterns, prefix + str(entry.pattern), inner, here)
        elif isinstance(entry, URLPattern):
            name = entry.name or ""
            full = f"{namespace}:{name}" if namespace and name else name
            routes.append(Route(full or f"<unnamed {prefix}{entry.pattern}>", prefix + str(entry.pattern), here))
    return routes


def all_routes() -> list[Route]:
    return _walk(get_resolver().url_patterns)


def app_routes() -> list[Route]:
    """Every route but Django's admin (checked apart: staff only)."""
    return [r for r in all_routes() if not r.route.startswith("admin/")]


# --- objects to fill path parameters -------------------------------------------------------------


class World:
    """One of everything a URL can point at, built through the services like the app does."""

    def __init__(self, users: dict[str, User]) -> None:
        import json

        from deployments.models import HostRun
        from deployments.services.rollouts import rollout_create, rollout_start
        from mdefleet.audit import SYSTEM, audit_record
        from tests.factories import HostCheckFactory, HostFactory, ProfileFactory, StepResultFactory, eligible_hosts

        self.users = users
        self.host = HostFactory(discovered=True)
        self.check = HostCheckFactory(host=self.host, run__host=self.host)
        self.discovery = self.check.run.discovery
        self.credential = self.host.credential
        self.profile = ProfileFactory(onboarding=json.dumps({"onboardingInfo": "walk"}))
        hosts = eligible_hosts(2, prefix="walk")
        self.rollout = rollout_create(
            actor=SYSTEM,
            name="walk",
            profile=self.profile,
            selection={"ids": [h.pk for h in hosts]},
            wave_plan="1, 100%",
        )
        rollout_start(actor=SYSTEM, rollout=self.rollout)
        self.run = HostRun.objects.filter(rollout=self.rollout).order_by("id").first()
        self.step = StepResultFactory(host_run=self.run)
        self.event = audit_record(actor=SYSTEM, action="walk.seed", target=self.host)
        self._service_account: Any = None
        self._webhook: Any = None
        self._delivery: Any = None

    @property
    def service_account(self) -> Any:
        if self._service_account is None:
            from mdefleet.audit import SYSTEM
            from mdefleet.service_accounts import service_account_create

            self._service_account, _ = service_account_create(actor=SYSTEM, name="walk-ticketing", role=OPERATOR)
        return self._service_account

    @property
    def webhook(self) -> Any:
        if self._webhook is None:
            from mdefleet.audit import SYSTEM
            from mdefleet.webhooks.services import webhook_subscription_create

            self._webhook, _ = webhook_subscription_create(
                actor=SYSTEM, name="walk-hook", url="https://tickets.example.com/hook", events=["rollout.completed"]
            )
        return self._webhook

    @property
    def delivery(self) -> Any:
        if self._delivery is None:
            import uuid

            from mdefleet.models import WebhookDelivery

            self._delivery = WebhookDelivery.objects.create(
                subscription=self.webhook, event="rollout.completed", event_id=uuid.uuid4(), payload={"walk": True}
            )
        return self._delivery

    def periodic_job(self) -> int:
        from django_celery_beat.models import PeriodicTask

        from deployments.services.periodic_jobs import PREFIX

        task = PeriodicTask.objects.filter(name__startswith=PREFIX).order_by("pk").first()
        assert task is not None, "no mdefleet periodic job to walk: are the beat schedules migrated?"
        return task.pk

    def recommendation_id(self) -> str:
        from deployments.managed_settings import recommendations

        return recommendations(self.profile.managed_settings)[0].id


# The object a ``pk`` points at, by the path segment before it ("rollouts/<pk>/...").
PK_OWNERS: dict[str, Any] = {
    "hosts": lambda w: w.host.pk,
    "discoveries": lambda w: w.discovery.pk,
    "credentials": lambda w: w.credential.pk,
    "profiles": lambda w: w.profile.pk,
    "rollouts": lambda w: w.rollout.pk,
    "audit": lambda w: w.event.pk,
    "service-accounts": lambda w: w.service_account.pk,
    "webhooks": lambda w: w.webhook.pk,
    "periodic-jobs": lambda w: w.periodic_job(),
}
# Other path parameters, by name.
PARAMS: dict[str, Any] = {
    "format": lambda w: "json",
    "run_id": lambda w: w.run.pk,
    "step_id": lambda w: w.step.pk,
    "check_id": lambda w: w.check.pk,
    "recommendation_id": lambda w: w.recommendation_id(),
    "delivery_id": lambda w: w.delivery.pk,
}


def fill(route: Route, world: World, given: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for param in route.params:
        if param in given:
            kwargs[param] = given[param]
        elif param == "pk":
            match = re.search(r"([\w-]+)/(?:<(?:\w+:)?pk>|\(\?P<pk>)", route.route)
            owner = match.group(1) if match else ""
            if owner not in PK_OWNERS:
                pytest.fail(f"{route}: no object for its pk after {owner!r}: add one to PK_OWNERS in {HERE}")
            kwargs[param] = PK_OWNERS[owner](world)
        elif param in PARAMS:
            kwargs[param] = PARAMS[param](world)
        else:
            pytest.fail(f"{route}: the walk cannot fill the path parameter {param!r}: add it to PARAMS in {HERE}")
    return kwargs


# --- the walk ------------------------------------------------------------------------------------


PERSONAS = ("anonymous", "none", *ROLE_ORDER)  # weakest first: refusals run before any allowed change


def _allowed(persona: str, minimal: str) -> bool:
    if minimal == PUBLIC:
        return True
    if persona in ("anonymous", "none"):
        return False
    return ROLE_ORDER.index(persona) >= ROLE_ORDER.index(minimal)


def _send(client: Client, method: str, url: str, route: Route, *, htmx: bool = False) -> Any:
    headers = {"HX-Request": "true", "HX-Target": "main"} if htmx else {}
    if method == "GET":
        return client.get(url, headers=headers)
    if route.is_api:
        return client.generic(method, url, data="{}", content_type="application/json", headers=headers)
    return client.generic(method, url, data="", content_type="application/x-www-form-urlencoded", headers=headers)


def _expect_refused(persona: str, route: Route, response: Any, what: str) -> None:
    if persona == "anonymous" and not route.is_api:
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), (
            f"{what}: anonymous must be sent to the login page, got {response.status_code}"
        )
    elif persona == "anonymous":
        assert response.status_code in (401, 403), f"{what}: anonymous must get 401/403, got {response.status_code}"
    else:
        assert response.status_code == 403, f"{what}: must be 403 for {persona}, got {response.status_code}"


def _variants(name: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    expected = EXPECTED[name]
    return expected if isinstance(expected, list) else [({}, expected)]


def _cases() -> list[Any]:
    seen: set[str] = set()
    cases = []
    for route in app_routes():
        key = f"{route.name} {route.route}"
        if route.name in EXPECTED and key not in seen:
            seen.add(key)
            cases.append(pytest.param(route, id=key))
    return cases


@pytest.mark.django_db
def test_every_url_has_a_role_expectation() -> None:
    missing = sorted({r.name for r in app_routes() if r.name not in EXPECTED})
    assert not missing, "\n".join(
        f"new URL {name} has no role expectation: add it to EXPECTED in {HERE}" for name in missing
    )
    unnamed = [str(r) for r in app_routes() if r.name.startswith("<unnamed")]
    assert not unnamed, f"name these URL patterns so the walk can key them: {unnamed}"


def test_no_expectation_is_left_for_a_url_that_is_gone() -> None:
    names = {r.name for r in app_routes()}
    stale = sorted(set(EXPECTED) - names)
    assert not stale, f"no URL is named {stale}: remove them from EXPECTED in {HERE}"


@pytest.mark.django_db
@pytest.mark.usefixtures("fernet_keys", "broker")  # enqueued on commit (never here), else to the test Redis
@pytest.mark.parametrize("route", _cases())
def test_each_role_gets_what_the_table_says(route: Route, users: dict[str, User]) -> None:
    world = World(users)
    clients: dict[str, Client] = {"anonymous": Client()}
    for persona in PERSONAS[1:]:
        clients[persona] = Client()
        clients[persona].force_login(users[persona])
    for given, methods in _variants(route.name):
        url = reverse(route.name, kwargs=fill(route, world, given))
        deleted = False
        public = PUBLIC in methods.values()
        for method in METHODS:
            minimal = methods.get(method)
            for persona in PERSONAS:
                what = f"{method} {url} [{route.name}] as {persona}"
                if minimal is None:
                    response = _send(clients[persona], method, url, route)
                    if public and persona != "anonymous" and response.status_code == 302:
                        continue  # the login page sends a logged-in user on, whatever the method
                    if persona == ADMIN:
                        assert response.status_code == 405, (
                            f"{what}: answered {response.status_code}, but EXPECTED lists no {method} for "
                            f"{route.name}: add it to EXPECTED in {HERE} or refuse the method"
                        )
                    else:
                        assert response.status_code in (302, 401, 403, 405), f"{what}: {response.status_code}"
                        if response.status_code == 302:
                            assert response["Location"].startswith(reverse("login")), what
                    continue
                if _allowed(persona, minimal):
                    response = _send(clients[persona], method, url, route)
                    status = response.status_code
                    assert status not in (401, 403, 405) and status < 500, f"{what}: allowed, but got {status}"
                    if method == "DELETE" and 200 <= status < 300:
                        deleted = True
                    assert status != 404 or deleted or route.name in NOT_FOUND_UNTIL_MADE, (
                        f"{what}: 404 (the walk filled {url} with a missing object?)"
                    )
                    continue
                for htmx in (False, True):
                    before = AuditEvent.objects.count()
                    response = _send(clients[persona], method, url, route, htmx=htmx)
                    _expect_refused(persona, route, response, f"{what}{' (htmx)' if htmx else ''}")
                    assert AuditEvent.objects.count() == before, f"{what}: refused, yet something was audited"


@pytest.mark.django_db
def test_djangos_admin_is_for_staff_only(users: dict[str, User]) -> None:
    """No role makes a user staff: the admin sends every persona to its own login page."""
    admin_routes = [r for r in all_routes() if r.name.startswith("admin:") and not r.params]
    assert all(r.route.startswith("admin/") for r in admin_routes)
    assert admin_routes
    for persona in ("anonymous", "none", *ROLE_ORDER):
        client = Client()
        if persona != "anonymous":
            client.force_login(users[persona])
        for route in admin_routes:
            url = reverse(route.name)
            if route.name in ("admin:login", "admin:logout"):
                continue
            response = client.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], (
                f"GET {url} as {persona}: {response.status_code}"
            )
