"""Step 10 — install: the mdatp package with the host's package manager (pinned if the profile says)."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker, q
from deployments.steps.packages import package_manager, package_spec, repo_id
from deployments.steps.repository import proxy_env
from hosts.ssh import CommandResult


class InstallStep(Step):
    """Installs only when the wanted package is absent; sets the static proxy after install."""

    key = "install"
    number = 10
    title = "Install mdatp"
    timeout = 900

    def command(self, ctx: StepContext) -> str:
        facts = ctx.data("facts")
        spec = package_spec(ctx.profile.agent_version, ctx.profile.channel)
        pm = package_manager(facts)
        rid = repo_id(facts, ctx.profile.channel)
        parts = [
            f"rpm -q {q(spec)} >/dev/null 2>&1 && echo 'already installed' || "
            f"{proxy_env(ctx)}{pm} -y --enablerepo={q(rid)} install {q(spec)}",
            marker("rpm"),
            "rpm -q mdatp",
        ]
        if ctx.proxy:
            parts += [marker("proxy"), f"mdatp config proxy set --value {q(ctx.proxy)}"]
        return join(*parts)

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        rpm = result.stdout.split("@@rpm", 1)[-1].split("@@proxy", 1)[0].strip()
        if not rpm.startswith("mdatp-"):
            lines = [line for line in (result.stdout + "\n" + result.stderr).splitlines() if line.strip()]
            tail = " | ".join(lines[-3:]) if lines else "no output"
            return Outcome.failed(f"mdatp is not installed after {package_manager(ctx.data('facts'))}: {tail}")
        version = rpm.removeprefix("mdatp-").split("-")[0].split(".x86_64")[0].split(".aarch64")[0]
        note = "already installed" if "already installed" in result.stdout else "installed"
        return Outcome.ok(f"{rpm} {note}", package=rpm, version=version)
