"""Step 4 — network: reach the Defender endpoints (through the proxy if set); detect TLS inspection."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from deployments.steps.base import Outcome, Step, StepContext, sections
from deployments.steps.commands import join, marker, q
from deployments.steps.support import judge, no_output_reason
from hosts.parsers import Probe, issuer_is_microsoft, parse_curl_probe_lines, parse_dn, parse_tls_certificate
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
        missing = no_output_reason(result)
        if missing:
            return Outcome.failed(missing)
        parts = sections(result.stdout)
        reach = parts.get("reach", "")
        probes = parse_curl_probe_lines(reach)
        endpoints = self._endpoints(probes, reach, result.timed_out)

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

    def _endpoints(self, probes: list[Probe], reach: str, timed_out: bool) -> list[dict[str, Any]]:
        """One entry per endpoint, matched by URL (by position if curl rewrote the URLs)."""
        by_url = {p["url"]: p for p in probes}
        positional = len(probes) == len(ENDPOINTS) and not any(url in by_url for url in ENDPOINTS)
        # When curl printed no -w line at all (not installed, killed), say what the shell printed instead.
        stray = next((line.strip() for line in reach.splitlines() if line.strip()), "")
        endpoints: list[dict[str, Any]] = []
        for index, url in enumerate(ENDPOINTS):
            probe = probes[index] if positional else by_url.get(url)
            if probe is None:
                error = "the command timed out first" if timed_out else (stray if stray and not probes else "no result")
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
