"""Step 4 — network: reach the Defender endpoints (through the proxy if set); detect TLS inspection."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from deployments.steps.base import Outcome, Step, StepContext, sections
from deployments.steps.commands import join, marker, q
from deployments.steps.support import judge, no_output_reason
from hosts.parsers import Probe, issuer_is_microsoft, parse_curl_probe, parse_dn, parse_tls_certificate
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
# curl 35 (TLS handshake failed) and 60 (certificate not trusted): how certificate pinning shows (CONNECTIVITY).
TLS_CURL_CODES = {35, 60}
INSPECTION_ADVICE = "Defender uses certificate pinning — bypass inspection for Defender URLs"


def _host(url: str) -> str:
    """The host name of a URL."""
    return urlsplit(url).hostname or url


def _short_issuer(issuer: str) -> str:
    """An issuer DN as "CN / O", for a one-line reason."""
    attributes = parse_dn(issuer)
    shown = [attributes[k] for k in ("CN", "O") if attributes.get(k)]
    return " / ".join(shown) or issuer


def probe_section(index: int) -> str:
    """The marker name in front of endpoint ``index``'s curl output."""
    return f"probe-{index}"


class NetworkStep(Step):
    """One curl per endpoint (status code or curl error), each behind its own marker, then the probe's certificate chain.

    The marker per endpoint keeps a transfer's ``-w`` line and its ``curl: (N)`` error together:
    old curl prints them in one order, new curl in the other (see ``parse_curl_probe``).
    """

    key = "network"
    number = 4
    title = "Network and TLS inspection"
    timeout = 90

    def command(self, ctx: StepContext) -> str:
        proxy = f" -x {q(ctx.proxy)}" if ctx.proxy else ""
        probes: list[str] = []
        for index, url in enumerate(ENDPOINTS):
            probes.append(marker(probe_section(index)))
            probes.append(
                f"curl -sS -o /dev/null --max-time 10{proxy} -w '%{{http_code}} %{{url_effective}}\\n' {q(url)} 2>&1"
            )
        return join(
            *probes,
            marker("tls"),
            f"curl -skv -o /dev/null --max-time 10{proxy} {q(TLS_PROBE)} 2>&1",
        )

    def evaluate(self, ctx: StepContext, result: CommandResult) -> Outcome:
        missing = no_output_reason(result)
        if missing:
            return Outcome.failed(missing)
        parts = sections(result.stdout)
        endpoints = self._endpoints(parts, result.timed_out)

        certificate = parse_tls_certificate(parts.get("tls", ""))
        issuer = certificate["issuer"]
        inspected = None if issuer is None else not issuer_is_microsoft(issuer)
        probe_host = _host(TLS_PROBE)

        failures: list[str] = []
        warnings: list[str] = []
        if inspected:
            failures.append(
                f"TLS inspection: the certificate for {probe_host} is issued by {issuer}; {INSPECTION_ADVICE}"
            )
        unreachable = [e for e in endpoints if not e["ok"]]
        if unreachable:
            described = []
            for endpoint in unreachable:
                if endpoint["curl_code"] is not None:
                    described.append(f"{endpoint['url']} (curl {endpoint['curl_code']}: {endpoint['error']})")
                else:
                    described.append(f"{endpoint['url']} ({endpoint['error']})")
            failures.append("unreachable: " + ", ".join(described))
        pinned = sorted({_host(e["url"]) for e in endpoints if e["curl_code"] in TLS_CURL_CODES})
        if pinned and not inspected:
            codes = sorted({e["curl_code"] for e in endpoints if e["curl_code"] in TLS_CURL_CODES})
            failures.append(
                f"curl error {'/'.join(str(c) for c in codes)} for {', '.join(pinned)} points to TLS inspection; "
                + INSPECTION_ADVICE
            )
        if issuer is None and not failures:
            warnings.append(f"could not read the certificate of {probe_host}: TLS inspection not ruled out")

        via = f" through proxy {ctx.proxy}" if ctx.proxy else ""
        summary = f"{len(endpoints)} Defender endpoints reachable{via}; {probe_host} certificate issued by "
        summary += _short_issuer(issuer) if issuer else "?"
        data: dict[str, Any] = {
            "endpoints": endpoints,
            "tls_issuer": issuer,
            "tls_subject": certificate["subject"],
            "tls_inspected": inspected,
            "proxy": ctx.proxy or None,
        }
        return judge(failures, warnings, summary, **data)

    def _endpoints(self, parts: dict[str, str], timed_out: bool) -> list[dict[str, Any]]:
        """One entry per endpoint, read from its own section of the output."""
        endpoints: list[dict[str, Any]] = []
        for index, url in enumerate(ENDPOINTS):
            text = parts.get(probe_section(index))
            probe: Probe | None = parse_curl_probe(text) if text is not None else None
            if probe is None:
                # No -w line: the command stopped before this probe, or curl itself did not run.
                stray = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
                error = stray or ("the command timed out first" if timed_out else "no result")
                endpoints.append({"url": url, "ok": False, "http_code": None, "curl_code": None, "error": error})
                continue
            endpoints.append(
                {
                    "url": url,
                    "ok": probe["ok"],
                    "http_code": probe["http_code"],
                    "curl_code": probe["curl_code"],
                    "error": probe["error"],
                }
            )
        return endpoints
