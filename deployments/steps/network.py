"""Step 4 — network: reach the Defender endpoints (through the proxy if set); detect TLS inspection."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker, q
from hosts.ssh import CommandResult

# The endpoints `mdatp connectivity test` probes, plus the package repository.
ENDPOINTS = [
    "https://x.cp.wd.microsoft.com/api/report",
    "https://cdn.x.cp.wd.microsoft.com/ping",
    "https://winatp-gw-cus.microsoft.com/test",
    "https://us-v20.events.data.microsoft.com/ping",
    "https://packages.microsoft.com/keys/microsoft.asc",
]
# The endpoint whose certificate issuer tells whether TLS is inspected.
TLS_PROBE = "https://winatp-gw-cus.microsoft.com/test"


class NetworkStep(Step):
    """One curl per endpoint (status code or curl error), then the probe's certificate chain."""

    key = "network"
    number = 4
    title = "Network and TLS inspection"
    timeout = 90

    def command(self, ctx: StepContext) -> str:
        proxy = f" -x {q(ctx.proxy)}" if ctx.proxy else ""
        probes = [
            f"curl -sS -o /dev/null --max-time 10{proxy} -w '%{{http_code}} %{{url_effective}}\\n' {q(url)} 2>&1"
            for url in ENDPOINTS
        ]
        return join(
            marker("reach"),
            *probes,
            marker("tls"),
            f"curl -skv -o /dev/null --max-time 10{proxy} {q(TLS_PROBE)} 2>&1",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        raise NotImplementedError
