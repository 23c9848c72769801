"""Step 15 — detection: an EICAR test file written on the host is detected (and never left behind).

Nothing is downloaded: the 68-byte EICAR string travels on standard input. With real-time
protection the file must disappear (quarantined) and show in ``mdatp threat list``; in passive
or on-demand mode a custom scan of the file must report it. The file is removed in every case.
"""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker, q
from deployments.steps.mdatp_output import parse_threat_list
from hosts.ssh import CommandResult

EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
TEST_FILE = "/tmp/mdefleet_eicar_test.com.txt"  # noqa: S108 - a path on the remote host


def _rtp(ctx: StepContext) -> bool:
    return ctx.data("health").get("real_time_protection_enabled") is True


class DetectionStep(Step):
    """Writes EICAR, checks quarantine (RTP) or a custom scan (passive), always removes the file."""

    key = "detection"
    number = 15
    title = "EICAR detection"
    timeout = 180

    def stdin(self, ctx: StepContext) -> str | None:
        return EICAR

    def command(self, ctx: StepContext) -> str:
        path = q(TEST_FILE)
        if _rtp(ctx):
            check = [
                "sleep 5",
                f"test -e {path} && echo 'EICAR file still present' || echo 'EICAR file removed'",
            ]
        else:
            check = [marker("scan"), f"mdatp scan custom --path {path}"]
        return join(
            f"cat > {path}",
            *check,
            marker("threats"),
            "mdatp threat list",
            f"rm -f {path}",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        before, _, threat_text = result.stdout.partition("@@threats")
        threats = [t for t in parse_threat_list(threat_text) if "eicar" in t.get("name", "").lower()]
        data = {"mode": "real_time" if _rtp(ctx) else "on_demand", "threats": threats[:5]}
        allowed_hint = " Check allowedThreats in the managed settings: the seed's sample allows EICAR."
        if _rtp(ctx):
            if "EICAR file still present" in before:
                return Outcome.failed("the EICAR test file was not quarantined within 5 s." + allowed_hint, **data)
            if not threats:
                return Outcome.failed("the EICAR file vanished but no EICAR threat is listed", **data)
            return Outcome.ok(f"EICAR quarantined and listed as {threats[0].get('name')}", **data)
        scan = before.partition("@@scan")[2]
        detected = [ln for ln in scan.splitlines() if "threat(s) detected" in ln]
        count = int(detected[0].split()[0]) if detected and detected[0].split()[0].isdigit() else 0
        if count < 1:
            return Outcome.failed("a custom scan of the EICAR test file reported no threat." + allowed_hint, **data)
        return Outcome.ok(f"custom scan detected EICAR ({count} threat) — passive/on-demand mode", **data)
