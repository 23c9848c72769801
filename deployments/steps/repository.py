"""Step 6 — repository: the Microsoft package repository for this distro, version and channel."""

from __future__ import annotations

from deployments.steps.base import Outcome, Step, StepContext
from deployments.steps.commands import join, marker, q
from deployments.steps.packages import KEY_PATH, MICROSOFT_KEY, package_manager, repo_id, repo_url
from hosts.ssh import CommandResult


def proxy_env(ctx: StepContext) -> str:
    """``https_proxy=... `` prefix so the package manager and curl go through the profile's proxy."""
    return f"https_proxy={q(ctx.proxy)} http_proxy={q(ctx.proxy)} " if ctx.proxy else ""


def repolist_pattern(rid: str) -> str:
    """An ERE matching the repolist line of exactly this repository id (ids are letters, digits and dashes)."""
    return f"^{rid}( |/|$)"


class RepositoryStep(Step):
    """Adds the repo file once (idempotent) and imports Microsoft's signing key."""

    key = "repository"
    number = 6
    title = "Microsoft package repository"
    timeout = 300

    def command(self, ctx: StepContext) -> str:
        facts = ctx.data("facts")
        channel = ctx.profile.channel
        rid, url = repo_id(facts, channel), repo_url(facts, channel)
        env = proxy_env(ctx)
        pm = package_manager(facts)
        add = (
            f"{env}dnf config-manager --add-repo {q(url)}"
            if pm == "dnf"
            else f"{env}yum-config-manager --add-repo={q(url)}"
        )
        curl_proxy = f" -x {q(ctx.proxy)}" if ctx.proxy else ""
        # The whole id in the first column: packages-microsoft-com-prod must not match ...-prod-insiders-fast.
        listed = f"{pm} -q repolist all 2>/dev/null | grep -E {q(repolist_pattern(rid))}"
        return join(
            f"{listed} >/dev/null && echo 'repository already configured' || {add}",
            f"curl -sS --max-time 60{curl_proxy} -o {q(KEY_PATH)} {q(MICROSOFT_KEY)} && rpm --import {q(KEY_PATH)}",
            marker("repolist"),
            listed,
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        rid = repo_id(ctx.data("facts"), ctx.profile.channel)
        listed = result.stdout.split("@@repolist", 1)[-1]
        # yum 3 shows ids with /<releasever>/<basearch> when the baseurl uses them; dnf shows the bare id.
        if not any(line.split()[:1] and line.split()[0].split("/")[0] == rid for line in listed.splitlines()):
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            return Outcome.failed(f"repository {rid} is not configured after adding it: {detail[0]}", repo_id=rid)
        return Outcome.ok(f"{rid} configured", repo_id=rid, repo_url=repo_url(ctx.data("facts"), ctx.profile.channel))
