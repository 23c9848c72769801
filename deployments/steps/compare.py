"""Step 17 — compare: pre vs post deltas of this host, judged against the rollout's thresholds."""

from __future__ import annotations

from deployments.comparison import METRICS, host_deltas, host_summary
from deployments.gates import critical_limits
from deployments.steps.base import Outcome, Step, StepContext
from hosts.ssh import CommandResult


class CompareStep(Step):
    """Judged locally from the two snapshots; the wave's gate decides, this step only reports."""

    key = "compare"
    number = 17
    title = "Pre/post comparison"
    blocking = False

    def command(self, ctx: StepContext) -> None:
        return None

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        pre, post = ctx.data("snapshot_pre"), ctx.data("snapshot_post")
        deltas = host_deltas(pre, post)
        # Per-host absolute limits only: relative rules and the wave median are judged by the wave gate.
        thresholds = critical_limits(getattr(ctx.profile, "gates", None))
        over, missing = [], []
        for metric, limit in thresholds.items():
            if limit is None:
                continue
            value = deltas.get(metric)
            if value is None:
                missing.append(METRICS[metric]["label"])
            elif value > limit:
                over.append(f"{METRICS[metric]['label']} +{value:g} {METRICS[metric]['unit']} (limit {limit:g})")
        # The summary is what the comparison report shows of this host (deployments/report.py).
        data = {"deltas": deltas, "over": over, "missing": missing, "summary": host_summary(pre, post)}
        if over:
            return Outcome.warn("regression: " + "; ".join(over), **data)
        if missing:
            return Outcome.warn("no pre/post figure for " + ", ".join(missing), **data)
        return Outcome.ok(
            f"CPU {_signed(deltas['cpu_points'])} points, memory {_signed(deltas['mem_mb'])} MB, "
            f"agent RSS {_signed(deltas['agent_rss_mb'], sign='')} MB",
            **data,
        )


def _signed(value: float | None, sign: str = "+") -> str:
    # An ungated metric may have no figure (a 0 s CPU sample): say so rather than crash the step.
    return "n/a" if value is None else format(value, f"{sign}g")
