"""Step 12 — connectivity: `mdatp connectivity test` reaches every Defender endpoint."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.mdatp_output import parse_connectivity
from hosts.ssh import CommandResult


class ConnectivityStep(Step):
    """Every tested endpoint must answer OK; curl errors 35/60 point at TLS inspection."""

    key = "connectivity"
    number = 12
    title = "Cloud connectivity"
    timeout = 300

    def command(self, ctx: StepContext) -> str:
        return "mdatp connectivity test"

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        rows = parse_connectivity(result.stdout)
        failed = [r for r in rows if not r["ok"]]
        if not rows:
            return Outcome.failed(f"no endpoint tested (exit {result.exit_status}): {result.stderr.strip()[:200]}")
        if failed or result.exit_status != 0:
            hint = ""
            if any(("35" in r["detail"] or "60" in r["detail"]) for r in failed):
                hint = " — curl error 35/60: the connection is TLS-inspected; bypass inspection for Defender URLs"
            names = ", ".join(r["url"] for r in failed[:3]) or f"exit {result.exit_status}"
            return Outcome.failed(f"{len(failed)} of {len(rows)} endpoints failed: {names}{hint}", endpoints=rows)
        return Outcome.ok(f"all {len(rows)} endpoints reachable", endpoints=rows)
