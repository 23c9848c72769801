"""curl against a simulated network: Microsoft endpoints, the package repository, proxies, and
the faults that break HTTPS (TLS inspection by a corporate CA, resets, dropped egress).

Verbose output follows the host's curl build: NSS on RHEL 6/7 (``* <TAB>subject: CN=...,O=...``),
OpenSSL 1.1 on RHEL 8 and OpenSSL 3 on RHEL 9 and Debian (``*  subject: C=US; ...; CN=...``).
Error texts and the order of the ``-w`` output against the error line follow the same versions.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hosts.sim import pmc
from hosts.sim.faults import TLS_VENDORS
from hosts.sim.profiles import pick
from hosts.sim.registry import Ctx, command
from hosts.sim.vfs import FSError

KNOWN_PROXIES = {
    "proxy.corp.example": "10.20.0.3",
    "proxy": "10.20.0.3",
    "10.20.0.3": "10.20.0.3",
    "squid.corp.example": "10.20.0.4",
}
_PUBLIC = {
    "secure.eicar.org",
    "www.eicar.org",
    "example.com",
    "www.example.com",
    "deb.debian.org",
    "security.debian.org",
    "cdn.redhat.com",
    "mirror.centos.org",
    "download.rockylinux.org",
    "repo.almalinux.org",
    "yum.oracle.com",
    "dl.fedoraproject.org",
}
_MICROSOFT = (".microsoft.com", ".windows.net", ".microsoft.us", ".azure.com", ".msft.net", ".windowsupdate.com")

_INSPECTING_CA = {
    "zscaler": (
        "C=US; ST=California; L=San Jose; O=Zscaler Inc.; OU=Zscaler Inc.; "
        "CN=Zscaler Intermediate Root CA (zscalerthree.net) (t)"
    ),
    "paloalto": "C=US; O=Contoso Corporation; OU=Network Security; CN=Palo Alto Networks Forward Trust CA",
    "fortinet": (
        "C=US; ST=California; L=Sunnyvale; O=Fortinet; OU=Certificate Authority; CN=Fortinet_CA_SSL; "
        "emailAddress=support@fortinet.com"
    ),
}
# Built in pieces so that no antivirus flags this source file.
EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*"


@dataclass
class Response:
    """What a simulated web server answers."""

    status: int
    reason: str
    body: str
    content_type: str = "text/plain; charset=utf-8"
    headers: list[str] = field(default_factory=list)


def known_host(host: str) -> bool:
    return host.endswith(_MICROSOFT) or host in _PUBLIC or host in ("localhost", "127.0.0.1")


def server_response(host: str, path: str) -> Response:
    """The answer of the real service for a path (as far as the steps care)."""
    if host == "packages.microsoft.com":
        if path.startswith("/keys/microsoft.asc"):
            return Response(200, "OK", microsoft_key(), "application/octet-stream")
        if path.startswith("/config/") and path.endswith((".repo", ".list")):
            return repo_file(path)
        if path.endswith("/repodata/repomd.xml") and pmc.serves(path.rsplit("/repodata/", 1)[0]):
            return Response(200, "OK", '<?xml version="1.0" encoding="UTF-8"?>\n<repomd/>\n', "text/xml")
        return Response(404, "Not Found", "", "text/html")
    if host.endswith(_MICROSOFT):
        if path.rstrip("/").endswith(("/ping", "/test", "/api/report")) or path in ("/", ""):
            return Response(200, "OK", "OK")
        return Response(404, "Not Found", "", "text/html")
    if host.endswith("eicar.org") and "eicar" in path:
        return Response(200, "OK", EICAR, "application/octet-stream")
    return Response(200, "OK", "<html><body>It works</body></html>\n", "text/html")


def repo_file(path: str) -> Response:
    """``/config/<distro>/<version>/<channel>.repo`` as packages.microsoft.com serves it (404 for unknown ones)."""
    body = pmc.config_file(path)
    if body is None:
        return Response(404, "Not Found", "", "text/html")
    return Response(200, "OK", body)


def microsoft_key() -> str:
    return pmc.microsoft_key()


def address_of(host: str) -> str:
    if host in KNOWN_PROXIES:
        return KNOWN_PROXIES[host]
    h = hashlib.blake2b(host.encode(), digest_size=4).digest()
    first = 20 if host.endswith(_MICROSOFT) else 93
    return f"{first}.{h[1]}.{h[2]}.{max(1, h[3])}"


@dataclass
class Cert:
    """The leaf certificate a TLS client sees."""

    subject: str  # OpenSSL order, "; " separated
    issuer: str
    start: float
    inspected: bool = False


def certificate(host: str, vendor: str, now: float) -> Cert:
    start = now - 86400 * (30 + int(hashlib.blake2b(host.encode(), digest_size=1).digest()[0]) % 200)
    if vendor:
        return Cert(
            f"C=US; ST=WA; L=Redmond; O=Microsoft Corporation; CN={host}"
            if host.endswith(_MICROSOFT)
            else f"CN={host}",
            _INSPECTING_CA[vendor],
            now - 86400 * 3,
            True,
        )
    if host.endswith(_MICROSOFT):
        ca = "07" if host == "packages.microsoft.com" else "04"
        return Cert(
            f"C=US; ST=WA; L=Redmond; O=Microsoft Corporation; CN={host}",
            f"C=US; O=Microsoft Corporation; CN=Microsoft Azure RSA TLS Issuing CA {ca}",
            start,
        )
    return Cert(f"CN={host}", "C=US; O=Let's Encrypt; CN=R11", start)


def _nss_name(name: str) -> str:
    # NSS prints the RDNs last-first, comma-separated, with E= for the e-mail attribute.
    parts = [part.strip().replace("emailAddress=", "E=") for part in name.split(";")]
    return ",".join(reversed(parts))


class Curl:
    """One curl invocation: options, then one transfer per URL."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        profile = ctx.profile
        self.version = profile.curl
        self.nss = profile.tls == "nss"
        self.new_order = tuple(int(x) for x in self.version.split(".")[:2]) >= (7, 66)
        self.silent = self.show_error = self.insecure = self.verbose = self.fail = False
        self.head = self.include = False
        self.output: str | None = None
        self.remote_name = False
        self.max_time: float | None = None
        self.connect_timeout: float | None = None
        self.proxy: str | None = None
        self.noproxy = False
        self.write_out = ""
        self.urls: list[str] = []

    def parse(self, args: list[str]) -> int | None:
        takes_value = {
            "-o",
            "--output",
            "-m",
            "--max-time",
            "--connect-timeout",
            "-x",
            "--proxy",
            "-w",
            "--write-out",
            "-H",
            "--header",
            "-X",
            "--request",
            "-d",
            "--data",
            "-A",
            "--user-agent",
            "-u",
            "--user",
            "--noproxy",
            "--cacert",
            "--retry",
            "-e",
            "--referer",
            "-T",
            "--upload-file",
        }
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg.startswith("--") and "=" in arg:
                arg, value = arg.split("=", 1)
                args.insert(i, value)
            if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
                # -skv, -sS, -fsSL, -o/dev/null: split combined short options
                head, rest = arg[:2], arg[2:]
                if head in takes_value:
                    args.insert(i, rest)
                    arg = head
                else:
                    args[i:i] = [f"-{c}" for c in rest]
                    arg = head
            value = None
            if arg in takes_value:
                if i >= len(args):
                    self.ctx.err(
                        f"curl: option {arg}: requires parameter\ncurl: try 'curl --help' or 'curl --manual' "
                        "for more information\n"
                    )
                    return 2
                value = args[i]
                i += 1
            if arg in ("-s", "--silent"):
                self.silent = True
            elif arg in ("-S", "--show-error"):
                self.show_error = True
            elif arg in ("-k", "--insecure"):
                self.insecure = True
            elif arg in ("-v", "--verbose"):
                self.verbose = True
            elif arg in ("-f", "--fail"):
                self.fail = True
            elif arg in ("-I", "--head"):
                self.head = True
            elif arg in ("-i", "--include"):
                self.include = True
            elif arg in ("-o", "--output"):
                self.output = value
            elif arg in ("-O", "--remote-name"):
                self.remote_name = True
            elif arg in ("-m", "--max-time"):
                self.max_time = float(value or 0)
            elif arg == "--connect-timeout":
                self.connect_timeout = float(value or 0)
            elif arg in ("-x", "--proxy"):
                self.proxy = value
            elif arg == "--noproxy":
                self.noproxy = True
            elif arg in ("-w", "--write-out"):
                self.write_out = value or ""
            elif arg in ("-V", "--version"):
                self.ctx.out(self.version_text())
                return 0
            elif (
                arg
                in (
                    "-L",
                    "--location",
                    "-4",
                    "-6",
                    "--compressed",
                    "-N",
                    "--no-buffer",
                    "-#",
                    "--progress-bar",
                    "-q",
                    "--tlsv1.2",
                    "--http1.1",
                    "--ssl-reqd",
                    "-g",
                    "--globoff",
                )
                or value is not None
            ):
                continue
            elif arg.startswith("-") and arg != "-":
                self.ctx.err(
                    f"curl: option {arg}: is unknown\ncurl: try 'curl --help' or 'curl --manual' for more information\n"
                )
                return 2
            else:
                self.urls.append(arg)
        if not self.urls:
            self.ctx.err("curl: no URL specified!\ncurl: try 'curl --help' or 'curl --manual' for more information\n")
            return 2
        return None

    def version_text(self) -> str:
        tls = "NSS/3.53.1" if self.nss else "OpenSSL/1.1.1k" if self.version == "7.61.1" else "OpenSSL/3.0.7"
        return (
            f"curl {self.version} (x86_64-redhat-linux-gnu) libcurl/{self.version} {tls} zlib/1.2.11 nghttp2/1.43.0\n"
            "Protocols: dict file ftp ftps gopher http https imap imaps ldap ldaps pop3 pop3s rtsp scp sftp smb "
            "smbs smtp smtps telnet tftp\nFeatures: AsynchDNS GSS-API HTTP2 HTTPS-proxy IPv6 Kerberos Largefile "
            "libz NTLM NTLM_WB SPNEGO SSL UnixSockets\n"
        )

    # one URL --------------------------------------------------------------------------------
    async def transfer(self, url: str) -> int:
        ctx = self.ctx
        faults = ctx.state.faults
        now = ctx.state.clock.now()
        parts = urlsplit(url if "://" in url else "http://" + url)
        scheme, host = parts.scheme, (parts.hostname or "")
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        log: list[str] = []
        info = {
            "http_code": "000",
            "url_effective": url,
            "remote_ip": "",
            "remote_port": "0",
            "ssl_verify_result": "0",
            "size_download": "0",
            "content_type": "",
            "time_total": 0.0,
            "num_connects": "0",
        }
        latency = 0.03 + pick(ctx.state.spec.seed, ctx.state.spec.index, host, 120) / 1000
        proxy = self.proxy
        if proxy is None and not self.noproxy:
            proxy = ctx.env.get(f"{scheme}_proxy") or ctx.env.get(f"{scheme.upper()}_PROXY")
        if scheme not in ("http", "https"):
            return self.finish(1, f'Protocol "{scheme}" not supported or disabled in libcurl', info, log)
        if proxy:
            proxy_host = urlsplit(proxy if "://" in proxy else "http://" + proxy).hostname or proxy
            proxy_port = urlsplit(proxy if "://" in proxy else "http://" + proxy).port or 1080
            if proxy_host not in KNOWN_PROXIES:
                await ctx.sleep(0.02)
                suffix = "; Name or service not known" if self.nss else ""
                return self.finish(5, f"Could not resolve proxy: {proxy_host}{suffix}", info, log)
            log += self.connect_lines(proxy_host, KNOWN_PROXIES[proxy_host], proxy_port, via_proxy=True)
            log += self.tunnel_lines(host, port) if scheme == "https" else []
            info["remote_ip"], info["remote_port"] = KNOWN_PROXIES[proxy_host], str(proxy_port)
        elif not known_host(host):
            await ctx.sleep(0.02)
            suffix = "; Name or service not known" if self.nss else ""
            return self.finish(6, f"Could not resolve host: {host}{suffix}", info, log)
        if faults.get("no-egress") and host not in ("localhost", "127.0.0.1"):
            limit = min(x for x in (self.max_time, self.connect_timeout, 127.0) if x is not None and x > 0)
            if not proxy:
                log += [f"*   Trying {address_of(host)}{':' + str(port) if not self.nss and self.new_order else ''}..."]
            await ctx.sleep(limit)
            info["time_total"] = limit
            if limit == self.max_time or limit == self.connect_timeout:
                return self.finish(28, f"Connection timed out after {int(limit * 1000) + 1} milliseconds", info, log)
            reason = (
                "Failed connect to {h}:{p}; Connection timed out"
                if self.nss
                else "Failed to connect to {h} port {p}: Connection timed out"
            )
            return self.finish(7, reason.format(h=host, p=port), info, log)
        if not proxy:
            ip = address_of(host)
            log += self.connect_lines(host, ip, port)
            info["remote_ip"], info["remote_port"] = ip, str(port)
        info["num_connects"] = "1"
        await ctx.sleep(latency)
        info["time_total"] = latency
        if scheme == "https":
            if faults.get("tls-reset"):
                if self.nss:
                    log += ["* NSS error -5961 (PR_CONNECT_RESET_ERROR)", "* TCP connection reset by peer"]
                    return self.finish(35, "TCP connection reset by peer", info, [*log, "* Closing connection 0"])
                detail = "SSL_ERROR_SYSCALL" if self.version == "7.61.1" else "Connection reset by peer"
                message = f"OpenSSL SSL_connect: {detail} in connection to {host}:{port} "
                return self.finish(35, message, info, [*log, f"* {message}", "* Closing connection 0"])
            vendor = ""
            if "tls-inspection" in faults:
                vendor = str(faults["tls-inspection"]) or TLS_VENDORS[ctx.state.spec.index % len(TLS_VENDORS)]
            cert = certificate(host, vendor, now)
            trusted = not cert.inspected
            log += self.tls_lines(host, cert, trusted)
            if not trusted:
                info["ssl_verify_result"] = "20"
                if not self.insecure:
                    if self.nss:
                        return self.finish(
                            60,
                            "Peer's Certificate issuer is not recognized.",
                            info,
                            [
                                *log,
                                "* NSS error -8179 (SEC_ERROR_UNKNOWN_ISSUER)",
                                "* Peer's Certificate issuer is not recognized.",
                                "* Closing connection 0",
                            ],
                        )
                    return self.finish(
                        60,
                        "SSL certificate problem: unable to get local issuer certificate",
                        info,
                        [
                            *log,
                            "* SSL certificate problem: unable to get local issuer certificate",
                            "* Closing connection 0",
                        ],
                    )
        response = server_response(host, parts.path or "/")
        info["http_code"] = f"{response.status:03d}"
        info["content_type"] = response.content_type
        method = "HEAD" if self.head else "GET"
        log += [f"> {method} {path} HTTP/1.1"]
        request_headers = [f"Host: {host}", f"User-Agent: curl/{self.version}", "Accept: */*"]
        if self.nss:
            request_headers = [request_headers[1], request_headers[0], request_headers[2]]
        log += [f"> {h}" for h in request_headers] + ["> "]
        if not self.nss:
            log.append("{ [5 bytes data]")
        body = "" if self.head else response.body
        headers = [
            f"HTTP/1.1 {response.status} {response.reason}",
            f"Content-Length: {len(response.body)}",
            f"Content-Type: {response.content_type}",
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(now))}",
        ]
        log += [f"< {h}" for h in headers] + ["< "]
        if body:
            log.append("{ [data not shown]" if self.nss else f"{{ [{len(body)} bytes data]")
        log.append(f"* Connection #0 to host {host if not proxy else proxy_host} left intact")
        info["size_download"] = str(len(body))
        if self.fail and response.status >= 400:
            modern = tuple(int(x) for x in self.version.split(".")[:2]) >= (7, 76)
            reason = f"{response.status}" if modern else f"{response.status} {response.reason}"
            return self.finish(22, f"The requested URL returned error: {reason}", info, log)
        out = ""
        if self.head or self.include:
            out += "\r\n".join(headers) + "\r\n\r\n"
        out += body
        status = self.deliver(out, url)
        return self.finish(status, "Failed writing body" if status else "", info, log)

    def connect_lines(self, host: str, ip: str, port: int, *, via_proxy: bool = False) -> list[str]:
        if self.nss:
            what = f"proxy {host}" if via_proxy else host
            trying = f"*   Trying {ip}..." + (" connected" if self.version.startswith("7.19") else "")
            return [
                f"* About to connect() to {what} port {port} (#0)",
                trying,
                f"* Connected to {host} ({ip}) port {port} (#0)",
            ]
        if self.version == "7.61.1":
            return [f"*   Trying {ip}...", "* TCP_NODELAY set", f"* Connected to {host} ({ip}) port {port} (#0)"]
        return [f"*   Trying {ip}:{port}...", f"* Connected to {host} ({ip}) port {port} (#0)"]

    def tunnel_lines(self, host: str, port: int) -> list[str]:
        lines = [
            f"* Establish HTTP proxy tunnel to {host}:{port}",
            f"> CONNECT {host}:{port} HTTP/1.1",
            f"> Host: {host}:{port}",
            f"> User-Agent: curl/{self.version}",
            "> Proxy-Connection: Keep-Alive",
            "> ",
            "< HTTP/1.1 200 Connection established",
            "< ",
        ]
        lines.append("* Proxy replied OK to CONNECT request" if self.nss else "* Proxy replied 200 to CONNECT request")
        if not self.nss:
            lines.append("* CONNECT phase completed!")
        return lines

    def tls_lines(self, host: str, cert: Cert, trusted: bool) -> list[str]:
        start, expire = cert.start, cert.start + 86400 * 360
        debian = self.ctx.profile.distro_id == "debian"
        cafile = "/etc/ssl/certs/ca-certificates.crt" if debian else "/etc/pki/tls/certs/ca-bundle.crt"
        capath = "/etc/ssl/certs" if debian else "none"
        if self.nss:
            stamp = "%b %d %H:%M:%S %Y GMT"
            lines = ["* Initializing NSS with certpath: sql:/etc/pki/nssdb"]
            lines += (
                ["* skipping SSL peer certificate verification"]
                if self.insecure
                else [f"*   CAfile: {cafile}", f"  CApath: {capath}"]
            )
            cn = cert.subject.rsplit("CN=", 1)[-1]
            return [
                *lines,
                "* SSL connection using TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "* Server certificate:",
                f"* \tsubject: {_nss_name(cert.subject)}",
                f"* \tstart date: {time.strftime(stamp, time.gmtime(start))}",
                f"* \texpire date: {time.strftime(stamp, time.gmtime(expire))}",
                f"* \tcommon name: {cn}",
                f"* \tissuer: {_nss_name(cert.issuer)}",
            ]

        def stamp(t: float) -> str:
            moment = time.gmtime(t)
            return f"{time.strftime('%b', moment)} {moment.tm_mday:2d} {time.strftime('%H:%M:%S %Y', moment)} GMT"

        if self.version == "7.61.1":
            lines = [
                "* ALPN, offering h2",
                "* ALPN, offering http/1.1",
                "* successfully set certificate verify locations:",
                f"*   CAfile: {cafile}",
                f"  CApath: {capath}",
            ]
        elif debian:
            lines = ["* ALPN: offers h2,http/1.1", "} [5 bytes data]"]
        else:
            lines = ["* ALPN, offering h2", "* ALPN, offering http/1.1", f"*  CAfile: {cafile}", f"*  CApath: {capath}"]
        handshake = [
            ("}", "* TLSv1.3 (OUT), TLS handshake, Client hello (1):", 512),
            ("{", "* TLSv1.3 (IN), TLS handshake, Server hello (2):", 122),
            ("{", "* TLSv1.3 (IN), TLS handshake, Encrypted Extensions (8):", 19),
            ("{", "* TLSv1.3 (IN), TLS handshake, Certificate (11):", 3351),
            ("{", "* TLSv1.3 (IN), TLS handshake, CERT verify (15):", 264),
            ("{", "* TLSv1.3 (IN), TLS handshake, Finished (20):", 52),
            ("}", "* TLSv1.3 (OUT), TLS change cipher, Change cipher spec (1):", 1),
            ("}", "* TLSv1.3 (OUT), TLS handshake, Finished (20):", 52),
        ]
        if not trusted and not self.insecure:
            handshake = [*handshake[:4], ("}", "* TLSv1.3 (OUT), TLS alert, unknown CA (560):", 2)]
        for direction, text, size in handshake:
            lines += [text, f"{direction} [{size} bytes data]"]
        if not trusted and not self.insecure:
            return lines
        lines += ["* SSL connection using TLSv1.3 / TLS_AES_256_GCM_SHA384"]
        lines += ["* ALPN: server accepted http/1.1"] if debian else ["* ALPN, server accepted to use http/1.1"]
        lines += [
            "* Server certificate:",
            f"*  subject: {cert.subject}",
            f"*  start date: {stamp(start)}",
            f"*  expire date: {stamp(expire)}",
        ]
        if self.version != "7.61.1":
            lines.append(f'*  subjectAltName: host "{host}" matched cert\'s "{host}"')
        lines.append(f"*  issuer: {cert.issuer}")
        lines.append(
            "*  SSL certificate verify ok."
            if trusted
            else "*  SSL certificate verify result: unable to get local issuer certificate (20), continuing anyway."
        )
        lines.append("} [5 bytes data]")
        return lines

    def deliver(self, body: str, url: str) -> int:
        target = self.output
        if target is None and self.remote_name:
            target = urlsplit(url).path.rsplit("/", 1)[-1] or "index.html"
        if target is None or target == "-":
            self.ctx.out(body)
            return 0
        if target == "/dev/null":
            return 0
        try:
            self.ctx.state.vfs.write(self.ctx.path(target), body, self.ctx.cred)
        except FSError as exc:
            if not self.silent or self.show_error:
                self.ctx.err(f"Warning: Failed to create the file {target}: {exc.reason}\n")
            return 23
        return 0

    def finish(self, status: int, message: str, info: dict[str, object], log: list[str]) -> int:
        """Print verbose lines, the progress meter, the -w text and the error in this curl's order."""
        ctx = self.ctx
        if self.verbose:
            ctx.err("".join(line + "\n" for line in log))
        if not self.silent and not self.verbose and not status:
            size = info["size_download"]
            ctx.err(
                "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n"
                "                                 Dload  Upload   Total   Spent    Left  Speed\n"
                f"100 {size:>5}  100 {size:>5}    0     0    152      0 --:--:-- --:--:-- --:--:--   152\n"
            )
        error = ""
        if status and status != 23 and (not self.silent or self.show_error):
            error = f"curl: ({status}) {message}\n"
            if status == 60:
                error += self.cacert_help()
        elif status == 23 and (not self.silent or self.show_error):
            error = "curl: (23) Failed writing body\n" if not self.nss else "curl: (23) Failed writing body (0 != 2)\n"
        info["exitcode"] = str(status)
        info["errormsg"] = message if status else ""
        written = self.render_write_out(info)
        if self.new_order:
            ctx.err(error)
            ctx.out(written)
        else:
            ctx.out(written)
            ctx.err(error)
        return status

    def cacert_help(self) -> str:
        if self.new_order:
            return (
                "More details here: https://curl.se/docs/sslcerts.html\n\n"
                "curl failed to verify the legitimacy of the server and therefore could not\n"
                "establish a secure connection to it. To learn more about this situation and\n"
                "how to fix it, please visit the web page mentioned above.\n"
            )
        site = "http://curl.haxx.se" if self.nss else "https://curl.haxx.se"
        text = (
            f"More details here: {site}/docs/sslcerts.html\n\n"
            'curl performs SSL certificate verification by default, using a "bundle"\n'
            " of Certificate Authority (CA) public keys (CA certs). If the default\n"
            " bundle file isn't adequate, you can specify an alternate file\n"
            " using the --cacert option.\n"
            "If this HTTPS server uses a certificate signed by a CA represented in\n"
            " the bundle, the certificate verification probably failed due to a\n"
            " problem with the certificate (it might be expired, or the name might\n"
            " not match the domain name in the URL).\n"
            "If you'd like to turn off curl's verification of the certificate, use\n"
            " the -k (or --insecure) option.\n"
        )
        if self.version == "7.61.1":
            text += "HTTPS-proxy has similar options --proxy-cacert and --proxy-insecure.\n"
        return text

    def render_write_out(self, info: dict[str, object]) -> str:
        if not self.write_out:
            return ""
        fmt = self.write_out
        out: list[str] = []
        i = 0
        while i < len(fmt):
            c = fmt[i]
            if c == "%" and fmt.startswith("%{", i):
                end = fmt.find("}", i)
                name = fmt[i + 2 : end]
                i = end + 1
                if name == "response_code":
                    name = "http_code"
                value = info.get(name)
                if isinstance(value, float):
                    out.append(f"{value:.3f}" if self.nss else f"{value:.6f}")
                elif name.startswith("time_"):
                    total = float(info["time_total"])  # type: ignore[arg-type]
                    share = {
                        "time_namelookup": 0.1,
                        "time_connect": 0.3,
                        "time_appconnect": 0.7,
                        "time_pretransfer": 0.72,
                        "time_starttransfer": 0.95,
                    }.get(name, 1.0)
                    out.append(f"{total * share:.3f}" if self.nss else f"{total * share:.6f}")
                elif value is not None:
                    out.append(str(value))
                elif name in ("http_version",):
                    out.append("1.1")
                elif name == "scheme":
                    out.append(urlsplit(str(info["url_effective"])).scheme.upper())
                elif not self.nss:
                    self.ctx.err(f"curl: unknown --write-out variable: '{name}'\n")
                continue
            if c == "%" and fmt.startswith("%%", i):
                out.append("%")
                i += 2
                continue
            if c == "\\" and i + 1 < len(fmt) and fmt[i + 1] in "nrt\\":
                out.append({"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[fmt[i + 1]])
                i += 2
                continue
            out.append(c)
            i += 1
        return "".join(out)


@command("curl")
async def curl(ctx: Ctx) -> int:
    client = Curl(ctx)
    early = client.parse(list(ctx.args))
    if early is not None:
        return early
    status = 0
    for url in client.urls:
        status = await client.transfer(url)
    return status
