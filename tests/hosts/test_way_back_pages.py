"""The way-back page: who may use it, what it asks, and that a refusal starts nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from hosts.models import Discovery
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db


def test_a_viewer_cannot_open_the_way_back_page(viewer_client: Any) -> None:
    assert viewer_client.get(reverse("hosts:way-back")).status_code == 403


def test_the_page_lists_the_ticked_hosts(operator_client: Any) -> None:
    host = HostFactory(name="web-17")
    page = operator_client.get(reverse("hosts:way-back"), {"ids": [host.pk]})
    assert page.status_code == 200
    assert b"web-17" in page.content and b"mdatp_offboard.json" in page.content


def test_an_htmx_submit_from_the_fleet_form_loads_the_page_whole(operator_client: Any) -> None:
    host = HostFactory()
    reply = operator_client.get(reverse("hosts:way-back"), {"ids": [host.pk]}, HTTP_HX_REQUEST="true")
    assert reply.headers["HX-Redirect"].startswith(reverse("hosts:way-back"))


def test_offboarding_without_the_package_is_refused_and_starts_nothing(operator_client: Any) -> None:
    host = HostFactory()
    reply = operator_client.post(reverse("hosts:way-back"), {"ids": str(host.pk), "mode": "offboard", "confirm": "on"})
    assert reply.status_code == 400
    assert b"needs the portal" in reply.content
    assert not Discovery.objects.exists()


def test_uninstall_starts_a_job_and_shows_its_progress(
    operator_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    host = HostFactory()
    with django_capture_on_commit_callbacks(execute=False):
        reply = operator_client.post(
            reverse("hosts:way-back"), {"ids": str(host.pk), "mode": "uninstall", "confirm": "on"}
        )
    job = Discovery.objects.get()
    assert job.kind == "uninstall"
    assert reply.status_code == 302 and reply.url == reverse("hosts:discovery", args=[job.pk])


def test_an_offboarding_package_that_is_not_json_is_refused(operator_client: Any) -> None:
    host = HostFactory()
    package = SimpleUploadedFile("mdatp_offboard.json", b"not json")
    reply = operator_client.post(
        reverse("hosts:way-back"),
        {"ids": str(host.pk), "mode": "offboard", "confirm": "on", "offboarding_package": package},
    )
    assert reply.status_code == 400 and b"not JSON" in reply.content
    assert not Discovery.objects.exists()
