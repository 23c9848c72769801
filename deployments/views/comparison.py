"""The pre/post comparison of a rollout: the page, its CSV and the printable report.

All three read :func:`deployments.report.rollout_report` once, so they carry the same numbers and
cost the same few queries for ten hosts or a thousand.
"""

from __future__ import annotations

import csv
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deployments import charts
from deployments.comparison import METRICS
from deployments.forms.comparison import ComparisonHostsFilter
from deployments.models import Rollout
from deployments.report import FIGURES, csv_rows, host_comparison, hosts_matching, rollout_report
from deployments.views.rollouts import _rollout_or_404
from hosts.selectors import latest_diagnoses
from mdefleet.roles import VIEWER
from mdefleet.views import role_required

HOSTS_PAGE_SIZE = 100
# Regressed hosts listed at the top, with their latest diagnosis (comparison_regressed.html).
REGRESSED_SHOWN = 20
GROUP_METRICS = ("cpu_points", "mem_mb", "agent_rss_mb", "disk_mb")


def _chart_context(report: dict[str, Any]) -> dict[str, Any]:
    """Per metric its histogram beside its numbers; pre-vs-post bars of the worst hosts."""
    metrics = []
    for metric, dist in report["distributions"].items():
        metrics.append(
            {
                "key": metric,
                "dist": {**dist, "row": [dist["median"], dist["p95"], dist["max"]]},
                "worst": report["worst"][metric],
                "chart": charts.histogram(
                    [h["deltas"][metric] for h in report["hosts"]],
                    title=f"{dist['label']} ({dist['unit']}): change per host",
                    unit=dist["unit"],
                    threshold=dist["threshold"],
                ),
            }
        )
    worst = report["worst_hosts"]
    paired = []
    for key, label, unit, metric in (
        ("cpu_busy", "CPU busy", "%", "cpu_points"),
        ("mem_used", "Memory used", "MB", "mem_mb"),
    ):
        rows = [
            {
                "label": h["name"],
                "pre": h["figures"][key]["pre"],
                "post": h["figures"][key]["post"],
                "level": h["judged"][metric],
            }
            for h in worst
        ]
        paired.append(
            {
                "key": key,
                "label": label,
                "unit": unit,
                "chart": charts.paired_bars(
                    rows, title=f"{label} before and after, {len(rows)} worst host(s)", unit=unit
                ),
            }
        )
    return {"metrics": metrics, "paired": paired}


def _show(value: float | None, *, signed: bool = False, suffix: str = "", level: str = "") -> dict[str, str]:
    """A table cell: the figure as text (or "no data", never 0) and its colour class."""
    if value is None:
        return {"text": "no data", "cls": "nodata"}
    text = f"{value:+,.2f}" if signed else f"{value:,.2f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return {"text": f"{text}{suffix}", "cls": level}


def host_cells(host: dict[str, Any]) -> list[dict[str, str]]:
    """The per-host table's figures in column order (see comparison_hosts.html's header)."""
    judged = host["judged"]
    cells = []
    for key, metric in (("cpu_busy", "cpu_points"), ("mem_used", "mem_mb")):
        figures = host["figures"][key]
        cells += [
            _show(figures["pre"]),
            _show(figures["post"]),
            _show(host["deltas"][metric], signed=True, level=judged[metric]),
            _show(figures["delta_pct"], signed=True, suffix=" %"),
        ]
    cells += [
        _show(host["deltas"]["agent_rss_mb"], level=judged["agent_rss_mb"]),
        _show(host["agent_rss_pct_of_ram"], suffix=" %"),
        _show(host["deltas"]["agent_cpu_pct"], level=judged["agent_cpu_pct"]),
        _show(host["agent_cpu_pct_of_host"], suffix=" %"),
        _show(host["deltas"]["disk_mb"], level=judged["disk_mb"]),
    ]
    return cells


def _wave_tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per wave its distribution rows (median, p95, max, over each limit, vs the earlier waves)."""
    tables = []
    for wave in report["waves"]:
        rows = [{"key": metric, **dist} for metric, dist in wave["distributions"].items()]
        tables.append({"wave": wave, "rows": rows})
    return tables


def _with_cells(hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hosts with their table cells, made only for the hosts a page shows (not all of them)."""
    for host in hosts:
        if "cells" not in host:
            host["cells"] = host_cells(host)
    return hosts


def _context(rollout: Rollout, report: dict[str, Any]) -> dict[str, Any]:
    regressed = [h for h in report["hosts"] if h["regressed"]]
    _with_cells(regressed[:REGRESSED_SHOWN])
    _with_cells(report["worst_hosts"])
    groups = [
        (
            title,
            [{**g, "shown": [(g["medians"][m], g["p95s"][m]) for m in GROUP_METRICS]} for g in report["groups"][key]],
        )
        for key, title in (("distro", "distro and version"), ("tag", "tag"))
    ]
    return {
        "groups": groups,
        "rollout": rollout,
        "report": report,
        "summary": report["summary"],
        "waves": report["waves"],
        "regressed": regressed,
        "regressed_shown": regressed[:REGRESSED_SHOWN],
        "regressed_more": max(0, len(regressed) - REGRESSED_SHOWN),
        "figures": FIGURES,
        "metric_meta": METRICS,
        "wave_tables": _wave_tables(report),
        **_chart_context(report),
    }


@require_GET
@role_required(VIEWER)
def rollout_comparison(request: HttpRequest, pk: int) -> HttpResponse:
    """Regressed hosts first with their numbers, wave gates, distributions, groups, charts, every host."""
    rollout = _rollout_or_404(pk)
    report = rollout_report(rollout)
    context = _context(rollout, report)
    # The latest high-CPU diagnosis of each regressed host shown (one query, hosts/selectors.py).
    shown = context["regressed_shown"]
    found = latest_diagnoses(h["host_id"] for h in shown)
    context["diagnosed"] = [(h, found.get(h["host_id"])) for h in shown]
    host_filter = ComparisonHostsFilter(request.GET)
    matching = hosts_matching(report["hosts"], **host_filter.filters())
    paginator = Paginator(matching, HOSTS_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context.update(
        host_filter=host_filter,
        filtered=len(matching) != len(report["hosts"]),
        page=page,
        hosts=_with_cells(list(page.object_list)),
        page_range=paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
    )
    return render(request, "deployments/comparison.html", context)


@require_GET
@role_required(VIEWER)
def rollout_report_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A plain printable page for a change ticket: summary, gates, charts, worst hosts, failed steps."""
    rollout = _rollout_or_404(pk)
    report = rollout_report(rollout)
    context = _context(rollout, report)
    return render(request, "deployments/comparison_report.html", context)


def report_csv_response(rollout: Rollout) -> HttpResponse:
    """The per-host comparison as CSV (one row per host run; a missing figure is an empty cell)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="rollout-{rollout.pk}-comparison.csv"'
    writer = csv.writer(response)
    writer.writerows(csv_rows(rollout_report(rollout)))
    return response


@require_GET
@role_required(VIEWER)
def rollout_comparison_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The comparison page's per-host numbers as a download."""
    return report_csv_response(_rollout_or_404(pk))


TIMELINE_SERIES = (("cpu_busy_pct", "CPU busy %", charts.OVER), ("mem_used_pct", "Memory used %", charts.OK))


@require_GET
@role_required(VIEWER)
def rollout_comparison_host(request: HttpRequest, pk: int, run_id: int) -> HttpResponse:
    """One host's comparison: every figure pre/post, processes, filesystems, its wave gate, its timeline."""
    rollout = _rollout_or_404(pk)
    host = host_comparison(rollout, run_id)
    if host is None:
        raise Http404("No such host in this rollout.")
    host["cells"] = host_cells(host)
    points = [{**p, "label": f"{p['phase']} {p['taken_at']:%Y-%m-%d %H:%M}"} for p in host["timeline"]]
    chart = charts.timeline(points, series=TIMELINE_SERIES, title=f"{host['name']}: snapshots over time")
    figures = [{"label": label, "unit": unit, **host["figures"][key]} for key, label, unit in FIGURES]
    return render(
        request,
        "deployments/comparison_host.html",
        {
            "rollout": rollout,
            "host": host,
            "timeline_chart": chart,
            "timeline": points,
            "figure_rows": figures,
            "metric_rows": [
                {
                    "key": key,
                    "label": meta["label"],
                    "unit": meta["unit"],
                    "value": host["deltas"][key],
                    "level": host["judged"][key],
                    "rule": host["rules"][key],
                }
                for key, meta in METRICS.items()
            ],
        },
    )
