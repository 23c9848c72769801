"""The comparison report: per-host deltas, distributions, gates, charts; page, CSV and API agree.

Expected figures are computed here from the snapshot numbers the test chose (statistics module,
sorted lists), never by the code under test.
"""

from __future__ import annotations

import csv
import io
import math
import random
import re
import statistics
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments.choices import HostRunStatus, RolloutStatus, WaveStatus
from deployments.models import HostRun, Rollout, StepResult, Wave
from deployments.report import distribution, percentile_nearest_rank
from hosts.choices import StepStatus
from hosts.models import Host, Snapshot
from tests.factories import ProfileFactory, eligible_hosts, fernet_keys  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fernet_keys")]

GATES = {"regression": {"cpu_points": 25, "mem_mb": 1536, "agent_rss_mb": 2048, "disk_mb": 2048}}


@dataclass
class Built:
    rollout: Rollout
    cpu: dict[str, float | None]  # host name → expected CPU delta (None: no post snapshot)
    mem: dict[str, float | None]
    failed: list[str]


def snapshot(rng: random.Random, *, cpu: float, mem: float, avail_kb: int, agent_kb: int | None) -> dict[str, Any]:
    return {
        "cpu_busy_pct": cpu,
        "mem_total_mb": 7821.0,
        "mem_used_mb": mem,
        "filesystems": [{"mount": "/", "avail_kb": avail_kb}, {"mount": "/var", "avail_kb": 5_000_000}],
        "top_processes": [{"pid": 1, "name": "systemd", "rss_kb": 14000, "cpu_pct": 0.1}],
        "agent_processes": []
        if agent_kb is None
        else [{"pid": 900 + rng.randint(0, 99), "name": "wdavdaemon", "rss_kb": agent_kb, "cpu_pct": 3.0}],
    }


def build(count: int, *, seed: int = 7, no_data_every: int = 9, failed_every: int = 13) -> Built:
    """A finished two-wave rollout of ``count`` hosts with seeded pre/post snapshots (bulk inserts)."""
    rng = random.Random(seed)
    hosts = eligible_hosts(count, tags=("web",), prefix=f"s{seed}")
    rollout = Rollout.objects.create(
        name=f"cmp {seed}",
        profile=ProfileFactory(),
        ticket="CHG0042",
        status=RolloutStatus.HALTED,
        wave_plan=["1", "100%"],
        gates=GATES,
        halt_reason="wave 2 failed its gate",
    )
    canary = Wave.objects.create(
        rollout=rollout,
        index=0,
        planned_size=1,
        status=WaveStatus.PASSED,
        gate_verdict="pass",
        gate_report={"verdict": "pass", "reasons": ["1 of 1 hosts OK"], "numbers": {"hosts": 1, "failed": 0}},
    )
    rest = Wave.objects.create(
        rollout=rollout,
        index=1,
        planned_size=count - 1,
        status=WaveStatus.FAILED,
        gate_verdict="fail",
        gate_report={
            "verdict": "fail",
            "reasons": ["CPU busy rose by more than 25 points on some host(s)"],
            "numbers": {
                "hosts": count - 1,
                "failed": 0,
                "allowed_failed": 0,
                "regressions": {
                    "cpu_points": {"threshold": 25, "over": 1, "missing": 0, "worst": 40, "hosts_over": []}
                },
            },
        },
    )
    runs = HostRun.objects.bulk_create(
        [
            HostRun(
                rollout=rollout,
                wave=canary if i == 0 else rest,
                host=host,
                status=HostRunStatus.FAILED if i % failed_every == failed_every - 1 else HostRunStatus.OK,
                reason="install failed" if i % failed_every == failed_every - 1 else "",
            )
            for i, host in enumerate(hosts)
        ]
    )
    now = timezone.now() - timedelta(minutes=5)
    results: list[StepResult] = []
    expected_cpu: dict[str, float | None] = {}
    expected_mem: dict[str, float | None] = {}
    failed: list[str] = []
    for i, (host, run) in enumerate(zip(hosts, runs, strict=True)):
        pre_cpu, pre_mem = round(rng.uniform(2, 40), 1), round(rng.uniform(800, 5000), 1)
        post_cpu, post_mem = round(pre_cpu + rng.uniform(-5, 35), 1), round(pre_mem + rng.uniform(-100, 2000), 1)
        avail = rng.randint(10_000_000, 20_000_000)
        pre = snapshot(rng, cpu=pre_cpu, mem=pre_mem, avail_kb=avail, agent_kb=None)
        results.append(StepResult(host_run=run, step="snapshot_pre", status="ok", parsed=pre, finished_at=now))
        if run.status == HostRunStatus.FAILED:
            failed.append(host.name)
            results.append(
                StepResult(
                    host_run=run, step="install", status=StepStatus.FAILED, reason="dnf: no space", finished_at=now
                )
            )
            expected_cpu[host.name] = expected_mem[host.name] = None
            continue
        if i % no_data_every == no_data_every - 1:
            expected_cpu[host.name] = expected_mem[host.name] = None  # the post snapshot never came
            continue
        post = snapshot(
            rng,
            cpu=post_cpu,
            mem=post_mem,
            avail_kb=avail - rng.randint(0, 3_000_000),
            agent_kb=rng.randint(200_000, 900_000),
        )
        results.append(StepResult(host_run=run, step="snapshot_post", status="ok", parsed=post, finished_at=now))
        expected_cpu[host.name] = round(post_cpu - pre_cpu, 2)
        expected_mem[host.name] = round(post_mem - pre_mem, 2)
    StepResult.objects.bulk_create(results)
    return Built(rollout=rollout, cpu=expected_cpu, mem=expected_mem, failed=failed)


def nearest_rank_p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def expected_dist(values: dict[str, float | None]) -> dict[str, Any]:
    known = [v for v in values.values() if v is not None]
    return {
        "n": len(known),
        "missing": len(values) - len(known),
        "median": round(statistics.median(known), 2),
        "p95": round(nearest_rank_p95(known), 2),
        "max": round(max(known), 2),
    }


def page_url(name: str, rollout: Rollout) -> str:
    return reverse(f"deployments:{name}", args=[rollout.pk])


def api_url(rollout: Rollout) -> str:
    return f"/api/v1/rollouts/{rollout.pk}/report/"


def read_csv(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode())))


# --- pure figures -------------------------------------------------------------------------------


def test_distribution_counts_missing_values_apart_and_never_as_zero() -> None:
    dist = distribution([None, 3.0, None, 1.0, 2.0])
    assert dist == {"n": 3, "missing": 2, "median": 2.0, "p95": 3.0, "max": 3.0, "min": 1.0, "mean": 2.0}
    assert distribution([None, None])["median"] is None


def test_p95_is_the_nearest_rank_value() -> None:
    values = list(range(1, 21))  # rank ceil(0.95 * 20) = 19
    assert percentile_nearest_rank(values, 95) == 19
    assert percentile_nearest_rank([5.0], 95) == 5.0
    rng = random.Random(3)
    sample = [rng.uniform(-10, 50) for _ in range(137)]
    assert distribution(sample)["p95"] == round(nearest_rank_p95(sample), 2)


# --- the same numbers on the page, in the CSV and in the API ----------------------------------------


def test_page_csv_and_api_carry_the_independently_computed_deltas_and_distributions(
    viewer_client: Any, api_client_for: Any
) -> None:
    built = build(60)
    cpu, mem = expected_dist(built.cpu), expected_dist(built.mem)

    api = api_client_for("viewer").get(api_url(built.rollout))
    assert api.status_code == 200
    body = api.json()
    for metric, expected in (("cpu_points", cpu), ("mem_mb", mem)):
        got = body["distributions"][metric]
        assert {k: got[k] for k in expected} == expected
    assert body["summary"]["hosts"] == 60
    assert body["summary"]["failed"] == len(built.failed)
    api_cpu = {h["host"]: h["cpu_points_delta"] for h in body["hosts"]}
    assert api_cpu == built.cpu
    assert {h["host"]: h["mem_mb_delta"] for h in body["hosts"]} == built.mem
    # Wave distributions cover the wave's own hosts.
    wave2 = body["waves"][1]
    assert wave2["verdict"] == "fail" and wave2["hosts"] == 59
    assert wave2["distributions"]["cpu_points"]["n"] == sum(
        1 for name, v in built.cpu.items() if v is not None and not name.endswith("-0000")
    )

    rows = read_csv(viewer_client.get(page_url("rollout-comparison-csv", built.rollout)).content)
    api_rows = read_csv(api_client_for("viewer").get(f"/api/v1/rollouts/{built.rollout.pk}/report.csv").content)
    assert rows == api_rows
    for row in rows:
        want = built.cpu[row["host"]]
        assert row["cpu_points_delta"] == ("" if want is None else str(want))  # missing: empty, never 0
        assert (row["cpu_busy_delta"] or None) == (None if want is None else str(want))

    page = viewer_client.get(page_url("rollout-comparison", built.rollout)).content.decode()
    dist_row = re.search(r'<tr data-metric="cpu_points">(.*?)</tr>', page, re.S).group(1)  # type: ignore[union-attr]
    cells = re.findall(r'<td class="num[^"]*">(.*?)</td>', dist_row, re.S)
    assert cells[:4] == [str(cpu["n"]), str(cpu["median"]), str(cpu["p95"]), str(cpu["max"])]
    assert cells[-1] == str(cpu["missing"])


def test_regressed_hosts_come_first_with_their_numbers_in_words_and_the_gate_that_stopped(
    viewer_client: Any,
) -> None:
    built = build(40)
    over = sorted(((v, n) for n, v in built.cpu.items() if v is not None and v > 25), reverse=True)
    assert over, "the seed must produce at least one CPU regression"
    page = viewer_client.get(page_url("rollout-comparison", built.rollout)).content.decode()
    regressed = page.split('id="regressed-table"')[1].split("</table>")[0]
    worst_value, worst_name = over[0]
    first_row = regressed.split("<tbody>")[1].split("</tr>")[0]
    assert worst_name in first_row or "Memory" in first_row  # furthest over any limit comes first
    assert f"CPU +{worst_value:g} points, limit 25" in page
    assert "gate: fail" in page and "CPU busy rose by more than 25 points" in page
    assert page.count('<svg class="chart" role="img"') >= 8
    assert "<title>" in page


def test_a_host_without_figures_shows_no_data_never_zero(viewer_client: Any) -> None:
    built = build(9, no_data_every=3, failed_every=100)
    name = next(n for n, v in built.cpu.items() if v is None)
    page = viewer_client.get(page_url("rollout-comparison", built.rollout)).content.decode()
    row = re.search(rf"<tr[^>]*>\s*<td class=\"nowrap\"><a [^>]*>{name}</a>.*?</tr>", page, re.S).group(0)  # type: ignore[union-attr]
    assert "no data" in row
    assert ">0<" not in row and "+0 " not in row


def test_the_printable_report_has_summary_gates_charts_worst_hosts_and_failed_steps(viewer_client: Any) -> None:
    built = build(30)
    page = viewer_client.get(page_url("rollout-report", built.rollout)).content.decode()
    assert "Rollout report" in page and "CHG0042" in page
    assert "Wave 2" in page and "gate: fail" in page
    assert 'id="worst-table"' in page and "<svg" in page
    assert "dnf: no space" in page and built.failed[0] in page
    assert "@media print" in open("static/css/comparison.css").read()


# --- access -------------------------------------------------------------------------------------------


def test_anonymous_callers_are_sent_to_login_and_the_api_answers_401(client: Any, api_client_for: Any) -> None:
    built = build(3)
    for name in ("rollout-comparison", "rollout-comparison-csv", "rollout-report"):
        response = client.get(page_url(name, built.rollout))
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get(api_url(built.rollout)).status_code in (401, 403)
    assert client.get(f"/api/v1/rollouts/{built.rollout.pk}/report.csv").status_code in (401, 403)


def test_the_rollout_page_links_to_the_comparison(viewer_client: Any) -> None:
    built = build(3)
    page = viewer_client.get(reverse("deployments:rollout", args=[built.rollout.pk])).content.decode()
    assert page_url("rollout-comparison", built.rollout) in page


# --- query counts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        lambda r: (page_url("rollout-comparison", r), "viewer_client"),
        lambda r: (page_url("rollout-comparison-csv", r), "viewer_client"),
        lambda r: (page_url("rollout-report", r), "viewer_client"),
        lambda r: (api_url(r), "api"),
        lambda r: (f"/api/v1/rollouts/{r.pk}/report.csv", "api"),
    ],
    ids=["page", "csv", "report", "api", "api-csv"],
)
def test_the_query_count_is_the_same_for_10_and_500_hosts(viewer_client: Any, api_client_for: Any, target: Any) -> None:
    api = api_client_for("viewer")
    counts = []
    for size, seed in ((10, 1), (500, 2)):
        built = build(size, seed=seed)
        path, who = target(built.rollout)
        caller = api if who == "api" else viewer_client
        assert caller.get(path).status_code == 200  # warm the session and caches
        with CaptureQueriesContext(connection) as queries:
            assert caller.get(path).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# --- the new per-host figures: processes, filesystems, the agent's share; per-wave tables -------------


def test_csv_and_api_carry_processes_filesystems_and_the_agent_share_computed_from_the_snapshots(
    viewer_client: Any, api_client_for: Any
) -> None:
    built = build(12, no_data_every=100, failed_every=100)
    Host.objects.filter(host_runs__rollout=built.rollout).update(cpu_cores=4)
    posts = {
        r.host_run.host.name: r.parsed
        for r in StepResult.objects.filter(host_run__rollout=built.rollout, step="snapshot_post").select_related(
            "host_run__host"
        )
    }
    pres = {
        r.host_run.host.name: r.parsed
        for r in StepResult.objects.filter(host_run__rollout=built.rollout, step="snapshot_pre").select_related(
            "host_run__host"
        )
    }
    body = api_client_for("viewer").get(api_url(built.rollout)).json()
    rows = {
        r["host"]: r for r in read_csv(viewer_client.get(page_url("rollout-comparison-csv", built.rollout)).content)
    }
    for host in body["hosts"]:
        post, pre = posts[host["host"]], pres[host["host"]]
        agent_kb = post["agent_processes"][0]["rss_kb"]
        # wdavdaemon is new: its RSS and CPU are the growth; 3 % of one core over 4 cores is 0.75 % of the host.
        assert host["processes"] == [
            {"name": "wdavdaemon", "change": "new", "count": 1, "rss_mb": round(agent_kb / 1024, 1),
             "rss_mb_delta": round(agent_kb / 1024, 1), "cpu_pct": 3.0, "cpu_pct_delta": 3.0}
        ]  # fmt: skip
        assert host["agent_cpu_pct_of_host"] == 0.75
        assert host["agent_cpu_pct_of_busy"] == round(min(100.0, 0.75 / post["cpu_busy_pct"] * 100), 1)
        assert host["agent_rss_pct_of_ram"] == round(agent_kb / 1024 / 7821.0 * 100, 2)
        lost = {fs["mount"]: fs["lost_mb"] for fs in host["filesystems"]}
        assert lost["/"] == round((pre["filesystems"][0]["avail_kb"] - post["filesystems"][0]["avail_kb"]) / 1024, 1)
        assert lost["/var"] == 0.0
        row = rows[host["host"]]
        assert row["agent_cpu_pct_of_host"] == "0.75"
        assert row["processes_new_or_grown"].startswith("wdavdaemon new, CPU +3 %, RSS +")
        assert row["filesystems_lost"].startswith(f"/ {lost['/']:g} MB")


def test_each_wave_has_its_own_distribution_and_the_earlier_waves_as_baseline(api_client_for: Any) -> None:
    built = build(30, no_data_every=7, failed_every=100)
    body = api_client_for("viewer").get(api_url(built.rollout)).json()
    canary_name = min(built.cpu)  # the first host (wave 1)
    rest = {n: v for n, v in built.cpu.items() if n != canary_name}
    wave2 = body["waves"][1]["distributions"]["cpu_points"]
    assert {k: wave2[k] for k in ("n", "missing", "median", "p95", "max")} == expected_dist(rest)
    assert wave2["over"] == sum(1 for v in rest.values() if v is not None and v > 25)
    assert wave2["baseline_median"] == built.cpu[canary_name]
    assert wave2["vs_baseline"] == round(expected_dist(rest)["median"] - built.cpu[canary_name], 2)
    worst = sorted(((v, n) for n, v in rest.items() if v is not None), key=lambda vn: (-vn[0], vn[1]))[:5]
    assert [(w["value"], w["name"]) for w in wave2["worst"]] == [(v, n) for v, n in worst]


def test_the_host_detail_shows_its_figures_processes_filesystems_and_a_snapshot_timeline(
    viewer_client: Any,
) -> None:
    built = build(5, no_data_every=100, failed_every=100)
    name, value = max(((n, v) for n, v in built.cpu.items() if v is not None), key=lambda nv: nv[1])
    run = HostRun.objects.get(rollout=built.rollout, host__name=name)
    now = timezone.now()
    for minutes, phase, cpu in ((90, "adhoc", 11.0), (60, "pre", 12.0), (30, "post", 44.0), (1, "adhoc", 40.0)):
        Snapshot.objects.create(
            host=run.host, phase=phase, taken_at=now - timedelta(minutes=minutes), cpu_busy_pct=cpu,
            mem_total_mb=8000.0, mem_used_mb=4000.0,
        )  # fmt: skip
    page = viewer_client.get(reverse("deployments:rollout-comparison-host", args=[built.rollout.pk, run.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert f"{value:+g}" in html
    assert 'id="host-processes"' in html and "wdavdaemon" in html
    assert 'id="host-filesystems"' in html
    timeline = html.split('id="timeline-table"')[1].split("</table>")[0]
    assert timeline.index("44.0") < timeline.index("12.0")  # newest first in the table
    assert html.count("<circle") >= 8  # 4 snapshots x 2 series in the chart
    other = Rollout.objects.create(name="other", profile=built.rollout.profile)
    missing = reverse("deployments:rollout-comparison-host", args=[other.pk, run.pk])
    assert viewer_client.get(missing).status_code == 404


def test_the_host_detail_needs_a_login(client: Any) -> None:
    built = build(2)
    run = HostRun.objects.filter(rollout=built.rollout).first()
    assert run is not None
    response = client.get(reverse("deployments:rollout-comparison-host", args=[built.rollout.pk, run.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_host_detail_query_count_does_not_grow_with_the_rollout(viewer_client: Any) -> None:
    counts = []
    for size, seed in ((10, 4), (300, 5)):
        built = build(size, seed=seed)
        run = HostRun.objects.filter(rollout=built.rollout).order_by("-id").first()
        assert run is not None
        url = reverse("deployments:rollout-comparison-host", args=[built.rollout.pk, run.pk])
        assert viewer_client.get(url).status_code == 200
        with CaptureQueriesContext(connection) as queries:
            assert viewer_client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_the_report_from_the_summaries_the_compare_step_stored_equals_the_one_from_the_snapshots() -> None:
    """The compare step stores each host's summary; the report then reads that, not the snapshots."""
    from deployments.report import rollout_report
    from deployments.steps.base import StepContext
    from deployments.steps.compare import CompareStep
    from hosts.ssh import CommandResult

    built = build(30)
    from_snapshots = rollout_report(built.rollout)
    assert from_snapshots["summary"]["compared"] > 20
    snapshots = StepResult.objects.filter(host_run__rollout=built.rollout, step__startswith="snapshot_")
    pairs: dict[int, dict[str, Any]] = {}
    for row in snapshots:
        pairs.setdefault(row.host_run_id, {})[row.step] = row.parsed
    compares = []
    for run_id, pair in pairs.items():
        if "snapshot_post" not in pair:
            continue  # stopped before the compare step: the report falls back to the snapshots
        ctx = StepContext(host_label="h", results=pair)
        outcome = CompareStep().evaluate(
            ctx, CommandResult(command="", exit_status=0, stdout="", stderr="", duration_ms=0)
        )
        compares.append(
            StepResult(
                host_run_id=run_id,
                step="compare",
                status=outcome.status,
                parsed=outcome.data,
                finished_at=timezone.now(),
            )
        )
    StepResult.objects.bulk_create(compares)
    # Blank the post snapshots of the compared hosts: only their summaries can give the figures now.
    snapshots.filter(step="snapshot_post").update(parsed={})

    from_summaries = rollout_report(built.rollout)
    assert from_summaries["hosts"] == from_snapshots["hosts"]
    assert from_summaries["distributions"] == from_snapshots["distributions"]
    assert from_summaries["summary"] == from_snapshots["summary"]


def test_the_host_table_filters_by_name_wave_and_kind_and_keeps_the_filter_across_pages(viewer_client: Any) -> None:
    built = build(130)
    url = page_url("rollout-comparison", built.rollout)

    def rows(query: dict[str, Any]) -> list[str]:
        page = viewer_client.get(url, query)
        assert page.status_code == 200
        table = page.content.decode().split('id="hosts-table"', 1)[1].split("</table>", 1)[0]
        return re.findall(r'<td class="nowrap"><a href="[^"]+">([^<]+)</a>', table)

    names = sorted(built.cpu)
    assert rows({"q": names[7].upper()}) == [names[7]]  # any case, part of the name
    assert rows({"wave": 1}) == [names[0]]  # the canary
    assert sorted(rows({"show": "failed"})) == sorted(built.failed)
    no_data = [n for n, v in built.cpu.items() if v is None and n not in built.failed]
    assert sorted(rows({"show": "nodata"})) == sorted(no_data + built.failed)
    # 130 hosts: a second page, and its link keeps the filter.
    page = viewer_client.get(url, {"wave": 2}).content.decode()
    assert "129 of 130 match the filter" in page
    assert 'href="?wave=2&amp;page=2#hosts"' in page
    assert len(rows({"wave": 2, "page": 2})) == 29


def test_a_bad_filter_value_says_so_and_is_left_out(viewer_client: Any) -> None:
    built = build(12)
    page = viewer_client.get(page_url("rollout-comparison", built.rollout), {"wave": "first", "show": "everything"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Wave: Enter a whole number." in text and "Show: Select a valid choice." in text
    assert "(left out of the filter)" in text
    assert text.count("data-run=") == 12
