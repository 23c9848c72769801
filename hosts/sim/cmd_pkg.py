"""Packages: rpm and dpkg queries, yum and dnf, yum-config-manager and dnf config-manager.

Two flavours of package manager: yum 3 (RHEL/CentOS 6 and 7: ``Loaded plugins:``, ``Resolving
Dependencies``, ``Dependencies Resolved``) and dnf 4 (RHEL 8 and later, where ``yum`` is dnf too:
``Dependencies resolved.``, ``Transaction Summary``). Repositories are read from
``/etc/yum.repos.d/*.repo``; the Microsoft ones are served by ``pmc.py`` and reached through the
host's faults and the ``https_proxy`` of the command's environment. Installing mdatp hands over to
``agent.py``; the ``install-fail`` fault breaks the package's %pre scriptlet.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hosts.sim import agent as agent_model
from hosts.sim import pmc
from hosts.sim.cmd_net import address_of
from hosts.sim.registry import Ctx, command
from hosts.sim.vfs import FSError

RULE = "=" * 80
DASHES = "-" * 80
_LIBNFQ = {6: "1.0.2-2.el6", 7: "1.0.2-2.el7_2", 8: "1.0.4-3.el8", 9: "1.0.5-1.el9", 10: "1.0.5-8.el10"}
_CURL_TEXT = {
    5: "Couldn't resolve proxy name",
    6: "Couldn't resolve host name",
    7: "Couldn't connect to server",
    28: "Timeout was reached",
    35: "SSL connect error",
    60: "Peer certificate cannot be authenticated with given CA certificates",
}
_NSS_TEXT = {60: "Peer's Certificate issuer is not recognized.", 35: "TCP connection reset by peer"}


# --- rpm and dpkg --------------------------------------------------------------------------------


@command("rpm", when=lambda p: p.pkg == "rpm")
async def rpm(ctx: Ctx) -> int:
    args = list(ctx.args)
    if "--import" in args:
        return _rpm_import(ctx, [a for a in args if a != "--import"])
    fmt = None
    info = query_all = False
    names: list[str] = []
    while args:
        arg = args.pop(0)
        if arg in ("--qf", "--queryformat") and args:
            fmt = args.pop(0)
        elif arg.startswith(("--qf=", "--queryformat=")):
            fmt = arg.split("=", 1)[1]
        elif arg.startswith("-") and not arg.startswith("--") and "q" in arg:
            info = info or "i" in arg
            query_all = query_all or "a" in arg
        elif arg == "--query":
            continue
        elif arg.startswith("-"):
            ctx.err(f"rpm: {arg}: unknown option\n")
            return 1
        else:
            names.append(arg)
    packages = dict(ctx.state.machine.packages)
    if ctx.state.rpm_keys:
        packages["gpg-pubkey"] = f"{pmc.KEY_ID}-{pmc.KEY_RELEASE}"
    if query_all:
        names = sorted(packages)
    if not names:
        ctx.err("rpm: no arguments given for query\n")
        return 1
    missing = 0
    for name in names:
        base = package_name(name, packages)
        if base is None:
            ctx.out(f"package {name} is not installed\n")
            missing += 1
            continue
        verrel = packages[base]
        version, release, arch = split_evr(verrel)
        if fmt is not None:
            values = {"NAME": base, "VERSION": version, "RELEASE": release, "ARCH": arch}
            text = re.sub(r"%\{(\w+)\}", lambda m, values=values: values.get(m.group(1).upper(), "(none)"), fmt)
            ctx.out(text.replace("\\n", "\n").replace("\\t", "\t"))
        elif info:
            ctx.out(
                f"Name        : {base}\nVersion     : {version}\nRelease     : {release}\nArchitecture: {arch}\n"
                f"Install Date: {time.strftime('%a %d %b %Y %I:%M:%S %p UTC', time.gmtime(ctx.state.boot))}\n"
                f"Size        : 1048576\nSummary     : {base}\n"
            )
        else:
            ctx.out(f"{base}-{verrel}\n")
    return min(missing, 255)


def _rpm_import(ctx: Ctx, paths: list[str]) -> int:
    if not paths:
        ctx.err("rpm: no arguments given for import\n")
        return 1
    if ctx.cred.uid != 0:
        ctx.err("error: can't create transaction lock on /var/lib/rpm/.rpm.lock (Permission denied)\n")
        return 1
    status = 0
    for path in paths:
        try:
            text = ctx.state.vfs.read(ctx.path(path), ctx.cred)
        except FSError:
            ctx.err(f"error: {path}: import read failed(2).\n")
            status = 1
            continue
        if "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
            ctx.err(f"error: {path}: key 1 not an armored public key.\n")
            status = 1
            continue
        ctx.state.rpm_keys.add(pmc.KEY_ID)
    return status


def package_name(query: str, packages: dict[str, str]) -> str | None:
    """The installed package a query names: ``name``, ``name-version``, ``name-version-release[.arch]``."""
    if query in packages:
        return query
    for name, verrel in packages.items():
        version = verrel.split("-", 1)[0]
        if query in (f"{name}-{verrel}", f"{name}-{verrel.rsplit('.', 1)[0]}", f"{name}-{version}"):
            return name
    return None


def split_evr(verrel: str) -> tuple[str, str, str]:
    body, _, arch = verrel.rpartition(".")
    if arch not in ("x86_64", "noarch", "i686", "aarch64"):
        body, arch = verrel, "x86_64"
    version, _, release = body.partition("-")
    return version, release, arch


@command("dpkg", "dpkg-query", when=lambda p: p.pkg == "dpkg")
async def dpkg(ctx: Ctx) -> int:
    args = list(ctx.args)
    mode = args.pop(0) if args and args[0].startswith("-") else "-s"
    packages = ctx.state.machine.packages
    status = 0
    for name in [a for a in args if not a.startswith("-")]:
        version = packages.get(name)
        if version is None:
            ctx.err(
                f"dpkg-query: package '{name}' is not installed and no information is available\n"
                if mode in ("-s", "--status")
                else f"dpkg-query: no packages found matching {name}\n"
            )
            status = 1
            continue
        if mode in ("-W", "--show"):
            ctx.out(f"{name}\t{version}\n")
        elif mode in ("-l", "--list"):
            ctx.out(f"ii  {name:<14} {version:<20} amd64        {name}\n")
        else:
            ctx.out(
                f"Package: {name}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n"
                f"Version: {version}\n"
            )
    return status


# --- yum and dnf: options, repositories, metadata -----------------------------------------------


@dataclass
class PkgArgs:
    """A yum/dnf command line, read."""

    verb: str = ""
    args: list[str] = field(default_factory=list)
    yes: bool = False
    quiet: bool = False
    verbose: bool = False
    enable: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)
    showduplicates: bool = False
    add_repo: list[str] = field(default_factory=list)


_WITH_VALUE = ("--enablerepo", "--disablerepo", "--setopt", "--releasever", "--installroot", "-e", "-d", "-c", "--repo")


def parse_pkg_args(argv: list[str]) -> PkgArgs | str:
    """Options may come before or after the verb, as both tools allow; an error text for a bad one."""
    parsed = PkgArgs()
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        name, has_value, value = arg.partition("=")
        if name in _WITH_VALUE or name == "--add-repo":
            if not has_value:
                if not rest:
                    return f"argument {name}: expected one argument"
                value = rest.pop(0)
            if name in ("--enablerepo", "--repo"):
                parsed.enable += value.split(",")
            elif name == "--disablerepo":
                parsed.disable += value.split(",")
            elif name == "--add-repo":
                parsed.add_repo.append(value)
            continue
        if arg in ("-y", "--assumeyes"):
            parsed.yes = True
        elif arg in ("-q", "--quiet"):
            parsed.quiet = True
        elif arg in ("-v", "--verbose"):
            parsed.verbose = True
        elif arg == "--showduplicates":
            parsed.showduplicates = True
        elif arg.startswith("-") and len(arg) > 1 and not arg.startswith("--") and set(arg[1:]) <= set("yqvC"):
            parsed.yes |= "y" in arg
            parsed.quiet |= "q" in arg
            parsed.verbose |= "v" in arg
        elif arg.startswith("-"):
            if arg in ("--nogpgcheck", "--refresh", "-C", "--cacheonly", "--best", "--allowerasing", "--noplugins"):
                continue
            return f"unrecognized arguments: {arg}"
        elif not parsed.verb:
            parsed.verb = arg
        else:
            parsed.args.append(arg)
    return parsed


class PkgError(Exception):
    """A yum/dnf failure: the text to print on stderr and the exit status."""

    def __init__(self, text: str, status: int = 1) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


class PackageManager:
    """One yum or dnf invocation on a host."""

    def __init__(self, ctx: Ctx, opts: PkgArgs) -> None:
        self.ctx = ctx
        self.opts = opts
        self.state = ctx.state
        self.dnf = ctx.profile.major >= 8
        self.repos = {repo.id: repo for repo in pmc.read_repos(ctx.state)}

    # output ------------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        if not self.opts.quiet:
            self.ctx.out(text)

    def banner(self) -> None:
        """What the plugins print first (yum 3: the plugin list; dnf on RHEL: subscription-manager)."""
        distro = self.ctx.profile.distro_id
        if not self.dnf:
            plugins = "product-id, search-disabled-repos, subscription-manager" if distro == "rhel" else "fastestmirror"
            self.say(f"Loaded plugins: {plugins}\n")
        elif distro == "rhel":
            self.say("Updating Subscription Management repositories.\n")

    # repositories ------------------------------------------------------------------------------
    def enabled(self) -> list[pmc.Repo]:
        chosen = {rid for rid, repo in self.repos.items() if repo.enabled}
        for pattern in self.opts.enable:
            matches = [rid for rid in self.repos if fnmatch.fnmatchcase(rid, pattern)]
            if not matches:
                if self.dnf:
                    raise PkgError(f"Error: Unknown repo: '{pattern}'\n")
                raise PkgError(f"Error getting repository data for {pattern}, repository not found\n")
            chosen.update(matches)
        for pattern in self.opts.disable:
            chosen = {rid for rid in chosen if not fnmatch.fnmatchcase(rid, pattern)}
        return [self.repos[rid] for rid in sorted(chosen)]

    def load_metadata(self, repos: list[pmc.Repo]) -> None:
        """Fetch what is not cached; a repository that cannot be read stops the command (skip_if_unavailable=0)."""
        cache: dict[str, float] = self.state.repo_cache
        now = self.state.clock.now()
        for repo in repos:
            if not repo.baseurl.startswith(pmc.PMC):
                continue
            error = pmc.fetch_error(self.state, self.ctx.env, repo.baseurl)
            if error is None and not pmc.serves(repo.baseurl):
                error = pmc.FetchError(22, "HTTP response code said error", 404)
            if error is not None:
                cache.pop(repo.id, None)
                raise PkgError(self._metadata_failure(repo, error))
            if repo.id not in cache:
                cache[repo.id] = now
                if self.dnf:
                    self.say(f"{repo.name[:48]:<48} 4.6 MB/s | 6.9 MB     00:01    \n")
                else:
                    self.say(f"{repo.id:<64}| 3.0 kB  00:00:00     \n")
                    self.say(f"{repo.id + '/primary_db':<64}| 412 kB  00:00:01     \n")
        if self.dnf and repos:
            newest = max((cache.get(r.id, now - 3600) for r in repos), default=now)
            ago = int(max(0.0, now - newest))
            stamp = time.strftime("%a %d %b %Y %I:%M:%S %p UTC", time.gmtime(newest))
            self.say(
                f"Last metadata expiration check: {ago // 3600}:{ago % 3600 // 60:02d}:{ago % 60:02d} ago on {stamp}.\n"
            )

    def _metadata_failure(self, repo: pmc.Repo, error: pmc.FetchError) -> str:
        url = repo.baseurl.rstrip("/") + "/repodata/repomd.xml"
        if self.dnf:
            if error.code == 22:
                detail = f"Status code: {error.status} for {url} (IP: {address_of('packages.microsoft.com')})"
            else:
                detail = (
                    f"Curl error ({error.code}): {_CURL_TEXT.get(error.code, 'Failure')} for {url} [{error.message}]"
                )
            return (
                f"Errors during downloading metadata for repository '{repo.id}':\n  - {detail}\n"
                f"Error: Failed to download metadata for repo '{repo.id}': Cannot download repomd.xml: "
                "Cannot download repodata/repomd.xml: All mirrors were tried\n"
            )
        if error.code == 22:
            detail = f"{url}: [Errno 14] HTTPS Error {error.status} - Not Found"
        else:
            text = _NSS_TEXT.get(error.code, error.message)
            detail = f'{url}: [Errno 14] curl#{error.code} - "{text}"'
        return (
            f"{detail}\nTrying other mirror.\n\n\n"
            f" One of the configured repositories failed ({repo.name}),\n"
            " and yum doesn't have enough cached data to continue. At this point the only\n"
            ' safe thing yum can do is fail. There are a few ways to work "fix" this:\n\n'
            "     1. Contact the upstream for the repository and get them to fix the problem.\n\n"
            "     2. Reconfigure the baseurl/etc. for the repository, to point to a working\n"
            "        upstream. This is most often useful if you are using a newer\n"
            "        distribution release than is supported by the repository (and the\n"
            "        packages for the previous distribution release still work).\n\n"
            "     3. Run the command with the repository temporarily disabled\n"
            f"            yum --disablerepo={repo.id} ...\n\n"
            "     4. Disable the repository permanently, so yum won't use it by default. Yum\n"
            "        will then just ignore the repository until you permanently enable it\n"
            "        again or use --enablerepo for temporary usage:\n\n"
            f"            yum-config-manager --disable {repo.id}\n"
            "        or\n"
            f"            subscription-manager repos --disable={repo.id}\n\n"
            "     5. Configure the failing repository to be skipped, if it is unavailable.\n"
            "        Note that yum will try to contact the repo. when it runs most commands,\n"
            "        so will have to try and fail each time (and thus. yum will be be much\n"
            "        slower). If it is a very temporary problem though, this is often a nice\n"
            "        compromise:\n\n"
            f"            yum-config-manager --save --setopt={repo.id}.skip_if_unavailable=true\n\n"
            f"failure: repodata/repomd.xml from {repo.id}: [Errno 256] No more mirrors to try.\n{detail}\n"
        )

    def builds(self, repos: list[pmc.Repo]) -> list[tuple[str, pmc.Repo]]:
        """(mdatp build, repository) for every build the enabled repositories offer, oldest first."""
        found = []
        for repo in repos:
            for build in pmc.builds_at(repo.baseurl) or ():
                found.append((build, repo))
        return sorted(found, key=lambda item: pmc.version_key(item[0]))

    def base_repo(self) -> str:
        return next((rid for rid, r in self.repos.items() if not r.baseurl.startswith(pmc.PMC)), "base")


def _channel(repo: pmc.Repo) -> str:
    segments = [s for s in urlsplit(repo.baseurl).path.split("/") if s]
    return segments[2] if len(segments) == 3 else "prod"


def _wanted(spec: str) -> tuple[str, str | None] | None:
    """``mdatp`` → (mdatp, None); ``mdatp-101.x.y[-1][.x86_64]`` → (mdatp, build); other names → None."""
    spec = re.sub(r"\.(x86_64|noarch)$", "", spec)
    if spec == "mdatp":
        return "mdatp", None
    match = re.fullmatch(r"mdatp-(\d+\.\d+\.\d+(?:_[a-z]+)?)(?:-1)?", spec)
    return ("mdatp", match.group(1)) if match else None


def _size(mb: float) -> str:
    return f"{mb:.0f} M" if mb >= 1 else f"{mb * 1024:.0f} k"


def _table(sections: list[tuple[str, list[tuple[str, str, str, str, str]]]], yum3: bool) -> list[str]:
    """The transaction table of yum/dnf: package, arch, version, repository, size."""
    rows = [row for _, items in sections for row in items]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("Package", "Arch", "Version"))]
    repo_width = max([len("Repository")] + [len(r[3]) for r in rows])
    header = (
        f" {'Package':<{widths[0]}}  {'Arch':<{widths[1]}}  {'Version':<{widths[2]}}  "
        f"{'Repository':<{repo_width}}  {'Size':>4}"
    )
    lines = [RULE, header.rstrip() if yum3 else header, RULE]
    for title, items in sections:
        if not items:
            continue
        lines.append(title)
        for name, arch, version, repo, size in items:
            lines.append(
                f" {name:<{widths[0]}}  {arch:<{widths[1]}}  {version:<{widths[2]}}  {repo:<{repo_width}}  {size:>4}"
            )
    return lines


async def _pkg(ctx: Ctx) -> int:
    parsed = parse_pkg_args(list(ctx.args))
    dnf = ctx.profile.major >= 8
    if isinstance(parsed, str):
        ctx.err(f"{ctx.name}: error: {parsed}\n" if dnf else f"Command line error: {parsed}\n")
        return 2 if dnf else 1
    if not parsed.verb:
        ctx.err("Error: Need to pass a list of commands to dnf\n" if dnf else "You need to give some command\n")
        return 1
    manager = PackageManager(ctx, parsed)
    verb = parsed.verb
    needs_root = verb in ("install", "remove", "erase", "update", "upgrade", "downgrade", "config-manager", "makecache")
    if needs_root and ctx.cred.uid != 0:
        ctx.err(
            "Error: This command has to be run with superuser privileges (under the root user on most systems).\n"
            if dnf
            else "You need to be root to perform this command.\n"
        )
        return 1
    try:
        if verb == "config-manager" and dnf:
            return await _config_manager(ctx, parsed)
        if verb == "repolist":
            return await _repolist(manager)
        if verb == "install":
            return await _install(manager)
        if verb in ("remove", "erase"):
            return await _remove(manager)
        if verb == "check-update":
            return await _check_update(manager)
        if verb in ("update", "upgrade"):
            return await _update(manager)
        if verb == "list":
            return await _list(manager)
        if verb in ("makecache", "clean"):
            manager.banner()
            if verb == "makecache":
                manager.load_metadata(manager.enabled())
                manager.say("Metadata cache created.\n")
            else:
                ctx.state.repo_cache.clear()
                manager.say(f"{len(manager.repos)} files removed\n")
            return 0
    except PkgError as failure:
        ctx.err(failure.text)
        return failure.status
    ctx.err(f"No such command: {verb}. Please use /usr/bin/{ctx.name} --help\n")
    return 1


@command("yum", when=lambda p: p.pkg == "rpm")
async def yum(ctx: Ctx) -> int:
    return await _pkg(ctx)


@command("dnf", when=lambda p: p.pkg == "rpm" and p.major >= 8)
async def dnf(ctx: Ctx) -> int:
    return await _pkg(ctx)


# --- repolist ---------------------------------------------------------------------------------------


async def _repolist(manager: PackageManager) -> int:
    ctx, opts = manager.ctx, manager.opts
    which = opts.args[0] if opts.args and opts.args[0] in ("all", "enabled", "disabled") else "enabled"
    wanted = [a for a in opts.args if a not in ("all", "enabled", "disabled")]
    enabled_ids = {r.id for r in manager.enabled()}
    repos = [
        r
        for r in manager.repos.values()
        if (which == "all" or (which == "enabled") == (r.id in enabled_ids))
        and (not wanted or any(fnmatch.fnmatchcase(r.id, w) for w in wanted))
    ]
    manager.banner()
    if not manager.dnf:
        # yum 3 reads every enabled repository's metadata to count its packages.
        manager.load_metadata([r for r in repos if r.id in enabled_ids])
    if not repos:
        if not manager.dnf:
            manager.say("repolist: 0\n")
        return 0
    rows = []
    for repo in sorted(repos, key=lambda r: r.id):
        release = "7Server" if ctx.profile.distro_id == "rhel" else str(ctx.profile.major)
        shown = repo.id
        if not manager.dnf and "$releasever" in repo.baseurl:
            shown = f"{repo.id}/{release}/x86_64"
        name = pmc.expand(repo.name, release)
        if repo.id in enabled_ids:
            count = len(pmc.builds_at(repo.baseurl) or ()) if repo.baseurl.startswith(pmc.PMC) else 5000
            status = "enabled" if manager.dnf else f"enabled: {count:>6,}"
        else:
            status = "disabled"
        rows.append((shown, name, status))
    id_width = max(len("repo id"), *(len(r[0]) for r in rows)) + 1
    name_width = max(len("repo name"), *(len(r[1]) for r in rows)) + 1
    with_status = which == "all" or not manager.dnf
    header = f"{'repo id':<{id_width}}{'repo name':<{name_width}}" + ("status" if with_status else "")
    ctx.out(header.rstrip() + "\n")
    for shown, name, status in rows:
        line = f"{shown:<{id_width}}{name:<{name_width}}" + (status if with_status else "")
        ctx.out(line.rstrip() + "\n")
    if not manager.dnf:
        manager.say(f"repolist: {sum(5000 for r in rows if r[2].startswith('enabled')):,}\n")
    return 0


# --- install ----------------------------------------------------------------------------------------


async def _install(manager: PackageManager) -> int:
    ctx, opts, state = manager.ctx, manager.opts, manager.state
    if not opts.args:
        raise PkgError("Error: Need to pass a list of pkgs to install\n")
    repos = manager.enabled()
    manager.banner()
    manager.load_metadata(repos)
    installed = state.machine.packages
    builds = manager.builds(repos)
    missing: list[str] = []
    present: list[str] = []
    target: tuple[str, pmc.Repo] | None = None
    for spec in opts.args:
        wanted = _wanted(spec)
        if wanted is None:
            name = re.sub(r"\.(x86_64|noarch)$", "", spec)
            if name in installed:
                present.append(f"{name}-{installed[name]}")
            else:
                missing.append(spec)
            continue
        _, build = wanted
        offered = [item for item in builds if build is None or item[0] == build]
        if not offered:
            missing.append(spec)
            continue
        chosen = offered[-1]
        if state.agent.installed and state.agent.version == chosen[0]:
            present.append(f"mdatp-{chosen[0]}-1.x86_64")
            continue
        target = chosen
    if missing:
        if manager.dnf:
            text = "".join(f"No match for argument: {m}\n" for m in missing)
            raise PkgError(text + f"Error: Unable to find a match: {' '.join(missing)}\n")
        manager.say("".join(f"No package {m} available.\n" for m in missing))
        if target is None:
            raise PkgError("Error: Nothing to do\n")
    if target is None:
        for each in present:
            ctx.out(
                f"Package {each} is already installed.\n"
                if manager.dnf
                else f"Package {each} already installed and latest version\n"
            )
        if manager.dnf:
            manager.say("Dependencies resolved.\nNothing to do.\nComplete!\n")
        else:
            ctx.out("Nothing to do\n")
        return 0
    return await _transaction(manager, target)


async def _transaction(manager: PackageManager, target: tuple[str, pmc.Repo]) -> int:
    """Resolve, download and install mdatp (and what it needs); the install-fail fault breaks %pre."""
    ctx, state = manager.ctx, manager.state
    build, repo = target
    installed = state.machine.packages
    major = min(max(ctx.profile.major, 6), 10)
    old = state.agent.version if state.agent.installed else ""
    action = (
        "Installing" if not old else "Upgrading" if pmc.version_key(build) > pmc.version_key(old) else "Downgrading"
    )
    nvr = f"mdatp-{build}-1.x86_64"
    deps: list[tuple[str, str, str, str]] = []  # name, version-release, repo, size
    if pmc.NETFILTER[0] not in installed:
        deps.append((pmc.NETFILTER[0], pmc.NETFILTER[1], repo.id, "61 k"))
    if "libnetfilter_queue" not in installed:
        deps.insert(0, ("libnetfilter_queue", _LIBNFQ[major], manager.base_repo(), "29 k"))
    everything = [*[(n, f"{n}-{v}.x86_64") for n, v, _, _ in deps], ("mdatp", nvr)]
    count = len(everything)
    fail = bool(state.faults.get("install-fail"))
    size = _size(pmc.MDATP_DOWNLOAD_MB)
    main_row = ("mdatp", "x86_64", f"{build}-1", repo.id, size)
    dep_rows = [(n, "x86_64", v, r, s) for n, v, r, s in deps]
    out: list[str] = []
    if manager.dnf:
        title = {"Installing": "Installing:", "Upgrading": "Upgrading:", "Downgrading": "Downgrading:"}[action]
        out.append("Dependencies resolved.")
        out += _table([(title, [main_row]), ("Installing dependencies:", dep_rows)], yum3=False)
        verb = {"Installing": "Install", "Upgrading": "Upgrade", "Downgrading": "Downgrade"}[action]
        out += ["", "Transaction Summary", RULE]
        installs = len(deps) + (action == "Installing")
        if installs:
            out.append(f"Install  {installs} Package{'s' if installs > 1 else ''}")
        if action != "Installing":
            out.append(f"{verb}  1 Package")
        out += [
            "",
            f"Total download size: {size}",
            f"Installed size: {_size(pmc.MDATP_INSTALLED_MB)}",
            "Downloading Packages:",
        ]
        for index, (name, full) in enumerate(everything, 1):
            shown = f"({index}/{count}): {full}.rpm"
            amount = (
                f"{pmc.MDATP_DOWNLOAD_MB} MB" if name == "mdatp" else "61 kB" if name == pmc.NETFILTER[0] else "29 kB"
            )
            out.append(f"{shown[:48]:<48} 21 MB/s | {amount:>6}     00:05    ")
        out += [DASHES, f"{'Total':<48} 20 MB/s | {pmc.MDATP_DOWNLOAD_MB} MB     00:05     "]
    else:
        verbing = "installed" if action == "Installing" else "an update" if action == "Upgrading" else "a downgrade"
        out += ["Resolving Dependencies", "--> Running transaction check"]
        out.append(f"---> Package mdatp.x86_64 0:{build}-1 will be {verbing}")
        needed_by = nvr[: -len(".x86_64")]
        for name, version, _, _ in reversed(deps):
            wanted = "libnetfilter_queue.so.1()(64bit)" if name == "libnetfilter_queue" else name
            out.append(f"--> Processing Dependency: {wanted} for package: {needed_by}")
            out += ["--> Running transaction check", f"---> Package {name}.x86_64 0:{version} will be installed"]
            needed_by = f"{name}-{version}"
        out += ["--> Finished Dependency Resolution", "", "Dependencies Resolved", ""]
        title = {"Installing": "Installing:", "Upgrading": "Updating:", "Downgrading": "Downgrading:"}[action]
        out += _table([(title, [main_row]), ("Installing for dependencies:", dep_rows)], yum3=True)
        out += ["", "Transaction Summary", RULE]
        extra = f" (+{len(deps)} Dependent package{'s' if len(deps) != 1 else ''})" if deps else ""
        verb = {"Installing": "Install", "Upgrading": "Upgrade", "Downgrading": "Downgrade"}[action]
        out += [f"{verb}  1 Package{extra}", "", f"Total download size: {size}"]
        out += [f"Installed size: {_size(pmc.MDATP_INSTALLED_MB)}", "Downloading packages:"]
        for index, (name, full) in enumerate(everything, 1):
            amount = "118 MB" if name == "mdatp" else " 61 kB" if name == pmc.NETFILTER[0] else " 29 kB"
            out.append(f"{f'({index}/{count}): {full}.rpm':<59}| {amount}  00:00:05     ")
        out += [DASHES, f"{'Total':<51}21 MB/s | 118 MB  00:00:05     "]
    manager.say("\n".join(out) + "\n")
    await ctx.sleep(6)
    if repo.gpgcheck and pmc.KEY_ID not in state.rpm_keys:
        manager.say(_key_import(manager.dnf, repo.id, nvr))
        state.rpm_keys.add(pmc.KEY_ID)
    lines: list[str] = []
    if manager.dnf:
        lines += ["Running transaction check", "Transaction check succeeded.", "Running transaction test"]
        lines += ["Transaction test succeeded.", "Running transaction"]
        lines.append(f"  {'Preparing':<17}: {'':<54} 1/1 ")
    else:
        lines += ["Running transaction check", "Running transaction test", "Transaction test succeeded"]
        lines.append("Running transaction")
    for index, (name, full) in enumerate(everything, 1):
        step = f"{index}/{count}"
        verb = action if name == "mdatp" else "Installing"
        if verb == "Upgrading" and not manager.dnf:
            verb = "Updating"
        if manager.dnf:
            if name != "libnetfilter_queue":
                lines.append(f"  {'Running scriptlet':<17}: {full:<54} {step} ")
            if name == "mdatp" and fail:
                lines += [
                    f"error: %prein({full}) scriptlet failed, exit status 1",
                    "",
                    f"Error in PREIN scriptlet in rpm package {name}",
                ]
                continue
            lines.append(f"  {verb:<17}: {full:<54} {step} ")
            if name == "mdatp":
                lines.append(f"  {'Running scriptlet':<17}: {full:<54} {step} ")
        else:
            lines.append(f"  {verb:<11}: {full:<58} {step} ")
            if name == "mdatp" and fail:
                lines += [
                    f"error: %pre({full}) scriptlet failed, exit status 1",
                    f"Error in PREIN scriptlet in rpm package {full}",
                    f"error: {full}: install failed",
                ]
    for index, (_, full) in enumerate(everything, 1):
        lines.append(
            f"  {'Verifying':<17}: {full:<54} {index}/{count} "
            if manager.dnf
            else f"  Verifying  : {full:<58} {index}/{count} "
        )
    if ctx.profile.distro_id == "rhel":
        lines.append(
            "Installed products updated."
            if manager.dnf
            else "rhel-7-server-rpms/7Server/x86_64/productid  | 2.1 kB  00:00:00     "
        )
    lines.append("")
    await ctx.sleep(4)
    # The dependencies land even when mdatp's own scriptlet fails (rpm installs them first).
    for name, version, _, _ in deps:
        state.installed_packages[name] = f"{version}.x86_64"
    if fail:
        if manager.dnf:
            if deps:
                lines += ["Installed:", "  " + "   ".join(f"{n}-{v}.x86_64" for n, v, _, _ in deps), ""]
            lines += ["Failed:", f"  {nvr}", "", "Error: Transaction failed"]
            manager.say("\n".join(lines[:-1]) + "\n")
            ctx.err("Error: Transaction failed\n")
        else:
            if deps:
                lines += ["Dependency Installed:"]
                lines.append("  " + "   ".join(f"{n}.x86_64 0:{v}" for n, v, _, _ in deps))
                lines.append("")
            lines += ["Failed:", f"  mdatp.x86_64 0:{build}-1", "", "Complete!"]
            manager.say("\n".join(lines) + "\n")
        return 1
    channel = _channel(repo)
    agent_model.install(state, build, channel)
    if manager.dnf:
        heading = {"Installing": "Installed:", "Upgrading": "Upgraded:", "Downgrading": "Downgraded:"}[action]
        names = [full for _, full in everything]
        lines.append(heading)
        for pair in range(0, len(names), 2):
            lines.append("  " + "  ".join(f"{n:<40}" for n in names[pair : pair + 2]).rstrip())
        lines += ["", "Complete!"]
    else:
        heading = {"Installing": "Installed:", "Upgrading": "Updated:", "Downgrading": "Downgraded:"}[action]
        lines += [heading, f"  mdatp.x86_64 0:{build}-1", ""]
        if deps:
            lines += ["Dependency Installed:"]
            lines.append("  " + "   ".join(f"{n}.x86_64 0:{v}" for n, v, _, _ in deps))
            lines.append("")
        lines.append("Complete!")
    manager.say("\n".join(lines) + "\n")
    return 0


def _key_import(dnf: bool, repo_id: str, nvr: str) -> str:
    identity = (
        f"Importing GPG key 0x{pmc.KEY_ID.upper()}:\n"
        f' Userid     : "{pmc.KEY_USERID}"\n'
        f" Fingerprint: {pmc.KEY_FINGERPRINT}\n"
        f" From       : {pmc.PMC}/keys/microsoft.asc\n"
    )
    if dnf:
        return (
            f"warning: /var/cache/dnf/{repo_id}-4f2e4a6e3b1f7c2d/packages/{nvr}.rpm: Header V4 RSA/SHA256 "
            f"Signature, key ID {pmc.KEY_ID}: NOKEY\n{repo_id:<48} 3.6 kB/s | 983  B     00:00    \n"
            f"{identity}Key imported successfully\n"
        )
    return (
        f"warning: /var/cache/yum/x86_64/7Server/{repo_id}/packages/{nvr}.rpm: Header V4 RSA/SHA256 "
        f"Signature, key ID {pmc.KEY_ID}: NOKEY\nPublic key for {nvr}.rpm is not installed\n"
        f"Retrieving key from {pmc.PMC}/keys/microsoft.asc\n{identity}"
    )


# --- remove, check-update, update, list ---------------------------------------------------------------


async def _remove(manager: PackageManager) -> int:
    ctx, opts, state = manager.ctx, manager.opts, manager.state
    manager.banner()
    names = [re.sub(r"\.(x86_64|noarch)$", "", a) for a in opts.args]
    wants_mdatp = "mdatp" in names or any(n.startswith("mdatp-") for n in names)
    if not wants_mdatp or not state.agent.installed:
        if manager.dnf:
            ctx.out("".join(f"No match for argument: {n}\n" for n in names))
            ctx.err("No packages marked for removal.\n")
            manager.say("Dependencies resolved.\nNothing to do.\nComplete!\n")
        else:
            manager.say("".join(f"No Match for argument: {n}\n" for n in names) + "No Packages marked for removal\n")
        return 0
    build = state.agent.version
    nvr = f"mdatp-{build}-1.x86_64"
    repo = "@" + pmc.repo_id_for(str(state.profile.major), state.agent.channel)
    size = _size(pmc.MDATP_INSTALLED_MB)
    out: list[str] = []
    if manager.dnf:
        out.append("Dependencies resolved.")
        out += _table([("Removing:", [("mdatp", "x86_64", f"{build}-1", repo, size)])], yum3=False)
        out += ["", "Transaction Summary", RULE, "Remove  1 Package", "", f"Freed space: {size}"]
        out += ["Running transaction check", "Transaction check succeeded.", "Running transaction test"]
        out += ["Transaction test succeeded.", "Running transaction"]
        out.append(f"  {'Preparing':<17}: {'':<54} 1/1 ")
        for verb in ("Running scriptlet", "Erasing", "Running scriptlet", "Verifying"):
            out.append(f"  {verb:<17}: {nvr:<54} 1/1 ")
        if ctx.profile.distro_id == "rhel":
            out.append("Installed products updated.")
        out += ["", "Removed:", f"  {nvr}", "", "Complete!"]
    else:
        out += ["Resolving Dependencies", "--> Running transaction check"]
        out += [f"---> Package mdatp.x86_64 0:{build}-1 will be erased", "--> Finished Dependency Resolution", ""]
        out += ["Dependencies Resolved", ""]
        out += _table([("Removing:", [("mdatp", "x86_64", f"{build}-1", repo, size)])], yum3=True)
        out += ["", "Transaction Summary", RULE, "Remove  1 Package", "", f"Installed size: {size}"]
        out += ["Downloading packages:", "Running transaction check", "Running transaction test"]
        out += ["Transaction test succeeded", "Running transaction"]
        out += [f"  Erasing    : {nvr:<58} 1/1 ", f"  Verifying  : {nvr:<58} 1/1 ", ""]
        out += ["Removed:", f"  mdatp.x86_64 0:{build}-1", "", "Complete!"]
    await ctx.sleep(3)
    agent_model.remove(state)
    manager.say("\n".join(out) + "\n")
    return 0


async def _check_update(manager: PackageManager) -> int:
    ctx, opts, state = manager.ctx, manager.opts, manager.state
    repos = manager.enabled()
    manager.banner()
    manager.load_metadata(repos)
    wanted = opts.args or ["mdatp"]
    if "mdatp" not in wanted or not state.agent.installed:
        return 0
    current = state.agent.version
    newer = [
        item
        for item in manager.builds(repos)
        if pmc.version_key(item[0]) > pmc.version_key(current) and _channel(item[1]) == state.agent.channel
    ]
    if not newer:
        return 0
    build, repo = newer[-1]
    ctx.out(f"\n{'mdatp.x86_64':<40}{build + '-1':<32}{repo.id}\n")
    return 100


async def _update(manager: PackageManager) -> int:
    state = manager.state
    repos = manager.enabled()
    manager.banner()
    manager.load_metadata(repos)
    if not state.agent.installed:
        manager.say(
            "Dependencies resolved.\nNothing to do.\nComplete!\n" if manager.dnf else "No packages marked for update\n"
        )
        return 0
    offered = [item for item in manager.builds(repos) if _channel(item[1]) == state.agent.channel]
    if not offered or pmc.version_key(offered[-1][0]) <= pmc.version_key(state.agent.version):
        manager.say(
            "Dependencies resolved.\nNothing to do.\nComplete!\n" if manager.dnf else "No packages marked for update\n"
        )
        return 0
    return await _transaction(manager, offered[-1])


async def _list(manager: PackageManager) -> int:
    ctx, opts, state = manager.ctx, manager.opts, manager.state
    repos = manager.enabled()
    manager.banner()
    manager.load_metadata(repos)
    names = [a for a in opts.args if a not in ("installed", "available", "all", "updates")] or ["mdatp"]
    if "mdatp" not in names:
        ctx.err("Error: No matching Packages to list\n")
        return 1
    rows: list[tuple[str, str, str]] = []
    if state.agent.installed:
        ctx.out("Installed Packages\n")
        repo = "@" + pmc.repo_id_for(str(state.profile.major), state.agent.channel)
        ctx.out(f"{'mdatp.x86_64':<32}{state.agent.version + '-1':<24}{repo}\n")
    builds = manager.builds(repos)
    if not opts.showduplicates:
        builds = builds[-1:]
    for build, repo in builds:
        if not (state.agent.installed and build == state.agent.version):
            rows.append(("mdatp.x86_64", f"{build}-1", repo.id))
    if rows:
        ctx.out("Available Packages\n")
        for name, version, repo_id in rows:
            ctx.out(f"{name:<32}{version:<24}{repo_id}\n")
    if not rows and not state.agent.installed:
        ctx.err("Error: No matching Packages to list\n")
        return 1
    return 0


# --- adding repositories -----------------------------------------------------------------------------


async def _fetch_repo_file(ctx: Ctx, url: str) -> tuple[str | None, pmc.FetchError | None]:
    """The .repo file at ``url`` (packages.microsoft.com only), or why it could not be fetched."""
    parts = urlsplit(url)
    if parts.hostname != "packages.microsoft.com":
        return None, pmc.FetchError(6, f"Could not resolve host: {parts.hostname}")
    error = pmc.fetch_error(ctx.state, ctx.env, url)
    if error is not None:
        return None, error
    await ctx.sleep(0.4)
    body = pmc.config_file(parts.path)
    if body is None:
        return None, pmc.FetchError(22, "The requested URL returned error: 404", 404)
    return body, None


async def _config_manager(ctx: Ctx, opts: PkgArgs) -> int:
    """``dnf config-manager --add-repo URL`` (also what ``yum-config-manager`` is on RHEL 8 and later)."""
    args = list(opts.args)
    urls = list(opts.add_repo)
    if "--add-repo" in args:
        index = args.index("--add-repo")
        urls += args[index + 1 : index + 2]
    if not urls:
        for flag in ("--enable", "--disable", "--set-enabled", "--set-disabled"):
            if flag in args:
                return _toggle(ctx, [a for a in args if not a.startswith("-")], flag in ("--enable", "--set-enabled"))
        ctx.err(
            "Error: one of the following arguments is required: --save --add-repo --dump --dump-variables --set-enabled --enable --set-disabled --disable\n"
        )
        return 1
    errors = 0
    for url in urls:
        if not opts.quiet:
            ctx.out(f"Adding repo from: {url}\n")
        body, error = await _fetch_repo_file(ctx, url)
        if error is not None:
            errors += 1
            if error.code == 22:
                ctx.err(f"Status code: {error.status} for {url} (IP: {address_of('packages.microsoft.com')})\n")
            else:
                ctx.err(
                    f"Curl error ({error.code}): {_CURL_TEXT.get(error.code, 'Failure')} for {url} [{error.message}]\n"
                )
            continue
        assert body is not None
        dest = posixpath.join("/etc/yum.repos.d", posixpath.basename(urlsplit(url).path))
        ctx.state.vfs.write(dest, body, ctx.cred)
        ctx.state.vfs.stat(dest).mode = 0o644
    if errors:
        ctx.err("Error: Configuration of repo failed\n" if errors == 1 else "Error: Configuration of repos failed\n")
        return 1
    return 0


def _toggle(ctx: Ctx, ids: list[str], enable: bool) -> int:
    """``--enable``/``--disable``: rewrite the ``enabled=`` line of each matching section."""
    repos = {r.id: r for r in pmc.read_repos(ctx.state)}
    for rid in ids:
        repo = repos.get(rid)
        if repo is None:
            continue
        text = ctx.state.vfs.read(repo.path, ctx.cred)
        section = re.compile(rf"(\[{re.escape(rid)}\][^\[]*?)enabled\s*=\s*\S+", re.S)
        text = section.sub(lambda m: m.group(1) + f"enabled={'1' if enable else '0'}", text, count=1)
        ctx.state.vfs.write(repo.path, text, ctx.cred)
    return 0


@command("yum-config-manager", when=lambda p: p.pkg == "rpm")
async def yum_config_manager(ctx: Ctx) -> int:
    parsed = parse_pkg_args(["config-manager", *ctx.args])
    if isinstance(parsed, str):
        ctx.err(f"Command line error: {parsed}\n")
        return 1
    if ctx.profile.major >= 8:
        if ctx.cred.uid != 0 and parsed.add_repo:
            ctx.err(
                "Error: This command has to be run with superuser privileges (under the root user on most systems).\n"
            )
            return 1
        return await _config_manager(ctx, parsed)
    # yum-utils' yum-config-manager: says what it fetched, logs a failure and still exits 0.
    plugins = (
        "product-id, search-disabled-repos, subscription-manager"
        if ctx.profile.distro_id == "rhel"
        else "fastestmirror"
    )
    if not parsed.quiet:
        ctx.out(f"Loaded plugins: {plugins}\n")
    if not parsed.add_repo:
        for flag in ("--enable", "--disable"):
            if flag in parsed.args:
                if ctx.cred.uid != 0:
                    ctx.err("You need to be root to perform this command.\n")
                    return 1
                return _toggle(ctx, [a for a in parsed.args if not a.startswith("-")], flag == "--enable")
        return 0
    if ctx.cred.uid != 0:
        ctx.err("You need to be root to perform this command.\n")
        return 1
    for url in parsed.add_repo:
        dest = posixpath.join("/etc/yum.repos.d", posixpath.basename(urlsplit(url).path))
        ctx.out(f"adding repo from: {url}\ngrabbing file {url} to {dest}\n")
        body, error = await _fetch_repo_file(ctx, url)
        if error is not None:
            if error.code == 22:
                reason = f"[Errno 14] HTTPS Error {error.status} - Not Found"
            else:
                reason = f'[Errno 14] curl#{error.code} - "{_NSS_TEXT.get(error.code, error.message)}"'
            ctx.err(f"Could not fetch/save url {url} to file {dest}: {reason}\n")
            continue
        assert body is not None
        ctx.state.vfs.write(dest, body, ctx.cred)
        ctx.state.vfs.stat(dest).mode = 0o644
        ctx.out(f"repo saved to {dest}\n")
    return 0
