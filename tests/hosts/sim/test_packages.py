"""yum, dnf, the repository helpers and rpm answer like RHEL's, against packages.microsoft.com's real layout."""

from __future__ import annotations

import re

import pytest

from hosts.sim.state import HostState
from tests.hosts.sim.util import make_state, run

RHEL9_REPO = "https://packages.microsoft.com/config/rhel/9.0/prod.repo"
RHEL7_REPO = "https://packages.microsoft.com/config/rhel/7/prod.repo"
REPO_ID = "packages-microsoft-com-prod"


def with_repo(profile: str = "rhel-9.4", url: str = RHEL9_REPO, **faults: object) -> HostState:
    state = make_state(profile, faults or None)
    adder = "dnf config-manager --add-repo" if state.profile.major >= 8 else "yum-config-manager --add-repo="
    status, _, err = run(state, f"{adder}{'' if adder.endswith('=') else ' '}{url}")
    assert status == 0, err
    return state


def test_dnf_config_manager_writes_the_repo_file_the_server_serves() -> None:
    state = make_state("rhel-9.4")

    status, out, err = run(state, f"dnf config-manager --add-repo {RHEL9_REPO}")

    assert (status, out, err) == (0, f"Adding repo from: {RHEL9_REPO}\n", "")
    assert run(state, "cat /etc/yum.repos.d/prod.repo")[1] == (
        f"[{REPO_ID}]\nname={REPO_ID}\nbaseurl=https://packages.microsoft.com/rhel/9.0/prod/\nenabled=1\n"
        "gpgcheck=1\ngpgkey=https://packages.microsoft.com/keys/microsoft.asc\n"
    )
    assert run(state, "stat -c %a /etc/yum.repos.d/prod.repo")[1] == "644\n"


@pytest.mark.parametrize(
    "path",
    [
        "config/centos/9.0/prod.repo",
        "config/centos/8.0/prod.repo",
        "config/rhel/8.0/prod.repo",
        "config/ol/8/prod.repo",
    ],
)
def test_the_repo_urls_the_installer_got_wrong_answer_404(path: str) -> None:
    url = f"https://packages.microsoft.com/{path}"

    status, out, err = run(make_state("rhel-9.4"), f"dnf config-manager --add-repo {url}")

    assert status == 1 and out == f"Adding repo from: {url}\n"
    assert re.fullmatch(
        rf"Status code: 404 for {re.escape(url)} \(IP: [\d.]+\)\nError: Configuration of repo failed\n", err
    )


@pytest.mark.parametrize("path", ["rhel/9/prod.repo", "rhel/9.0/prod.repo", "rhel/7.2/prod.repo", "alma/9/prod.repo"])
def test_the_versions_packages_microsoft_com_has_are_served(path: str) -> None:
    assert (
        run(make_state("rhel-9.4"), f"dnf -q config-manager --add-repo https://packages.microsoft.com/config/{path}")[0]
        == 0
    )


def test_yum_utils_config_manager_logs_a_404_and_still_exits_0() -> None:
    url = "https://packages.microsoft.com/config/rhel/7.9/prod.repo"

    status, out, err = run(make_state("rhel-7.9"), f"yum-config-manager --add-repo={url}")

    assert status == 0
    assert out == (
        "Loaded plugins: product-id, search-disabled-repos, subscription-manager\n"
        f"adding repo from: {url}\ngrabbing file {url} to /etc/yum.repos.d/prod.repo\n"
    )
    assert (
        err
        == f"Could not fetch/save url {url} to file /etc/yum.repos.d/prod.repo: [Errno 14] HTTPS Error 404 - Not Found\n"
    )


def test_repolist_shows_the_configured_repositories_in_columns() -> None:
    state = with_repo()

    lines = run(state, "dnf -q repolist all")[1].splitlines()

    assert re.fullmatch(r"repo id +repo name +status", lines[0])
    assert re.fullmatch(rf"{REPO_ID} +{REPO_ID} +enabled", lines[1])
    assert lines[0].index("repo name") == lines[1].index(REPO_ID, len(REPO_ID))
    assert any(line.startswith("rhel-9-for-x86_64-baseos-rpms ") for line in lines)


def test_yum_3_repolist_counts_packages_and_names_releasever() -> None:
    state = with_repo("centos-7.9", RHEL7_REPO)

    lines = run(state, "yum -q repolist all")[1].splitlines()

    assert any(re.fullmatch(rf"{REPO_ID} +{REPO_ID} +enabled: +6", line) for line in lines)
    assert any(line.startswith("base/7/x86_64 ") and "CentOS-7 - Base" in line for line in lines)


def test_dnf_installs_mdatp_with_its_dependencies_and_starts_the_agent() -> None:
    state = with_repo()

    status, out, err = run(state, f"dnf -y --enablerepo={REPO_ID} install mdatp")

    assert status == 0 and err == ""
    assert "Dependencies resolved." in out and out.endswith("\nComplete!\n")
    assert re.search(rf"^Installing:\n mdatp +x86_64 +101\.25092\.0003-1 +{REPO_ID} +118 M$", out, re.M)
    assert "  mdatp-101.25092.0003-1.x86_64" in out.split("Installed:\n", 1)[1]
    assert run(state, "rpm -q mdatp")[1] == "mdatp-101.25092.0003-1.x86_64\n"
    assert run(state, "rpm -q mdatp-101.25092.0003")[0] == 0
    assert run(state, "test -x /opt/microsoft/mdatp/sbin/wdavdaemon && command -v mdatp")[1] == "/usr/bin/mdatp\n"
    assert run(state, "id mdatp")[1].startswith("uid=989(mdatp)")
    assert run(state, "systemctl is-active mdatp")[1] == "active\n"
    ps = run(state, "ps -eo user=,rss=,args= | grep -E '[m]icrosoft/mdatp'")[1].splitlines()
    assert [line.split(None, 2)[2].split(" --")[0] for line in ps] == [
        "/opt/microsoft/mdatp/sbin/wdavdaemon",
        "/opt/microsoft/mdatp/sbin/wdavdaemon edr 12 11",
        "/opt/microsoft/mdatp/sbin/wdavdaemon unprivileged 16 15",
        "/opt/microsoft/mdatp/sbin/telemetryd_v2",
        "/opt/microsoft/mdatp/sbin/crashpad_handler",
    ]
    assert ps[2].split()[0] == "mdatp" and 300_000 <= int(ps[2].split()[1]) <= 900_000


def test_yum_3_prints_its_own_transaction_and_already_installed() -> None:
    state = with_repo("rhel-7.9", RHEL7_REPO)

    out = run(state, f"yum -y --enablerepo={REPO_ID} install mdatp")[1]

    assert out.startswith("Loaded plugins: product-id, search-disabled-repos, subscription-manager\n")
    assert "---> Package mdatp.x86_64 0:101.25092.0003-1 will be installed" in out
    assert "\nDependencies Resolved\n" in out and "Installed:\n  mdatp.x86_64 0:101.25092.0003-1\n" in out
    assert out.endswith("Complete!\n")
    again = run(state, f"yum -y --enablerepo={REPO_ID} install mdatp")
    assert again[0] == 0 and "Package mdatp-101.25092.0003-1.x86_64 already installed and latest version" in again[1]


@pytest.mark.parametrize(
    ("profile", "url", "expected"),
    [
        ("rhel-9.4", RHEL9_REPO, "No match for argument: mdatp\nError: Unable to find a match: mdatp\n"),
        ("rhel-7.9", RHEL7_REPO, "Error: Nothing to do\n"),
    ],
)
def test_a_repository_without_mdatp_says_no_match(profile: str, url: str, expected: str) -> None:
    state = make_state(profile)

    status, out, err = run(state, "yum -y install mdatp")

    assert status == 1 and err == expected
    if state.profile.major == 7:
        assert "No package mdatp available.\n" in out


def test_enabling_a_repository_that_is_not_configured_fails() -> None:
    assert run(make_state("rhel-9.4"), f"dnf -y --enablerepo={REPO_ID} install mdatp")[2] == (
        f"Error: Unknown repo: '{REPO_ID}'\n"
    )
    assert run(make_state("rhel-7.9"), f"yum -y --enablerepo={REPO_ID} install mdatp")[2] == (
        f"Error getting repository data for {REPO_ID}, repository not found\n"
    )


def test_a_pinned_version_must_exist_and_check_update_sees_newer_ones() -> None:
    state = with_repo()

    missing = run(state, "dnf -y install mdatp-101.99999.0000")
    assert missing[0] == 1 and missing[2].startswith("No match for argument: mdatp-101.99999.0000\n")
    assert run(state, "dnf -y install mdatp-101.25062.0010")[0] == 0
    status, out, _ = run(state, f"dnf -q --enablerepo={REPO_ID} check-update mdatp")
    assert status == 100 and re.fullmatch(rf"\nmdatp\.x86_64 +101\.25092\.0003-1 +{REPO_ID}\n", out)
    assert run(state, "dnf -y update mdatp")[0] == 0
    assert run(state, f"dnf -q --enablerepo={REPO_ID} check-update mdatp") == (0, "", "")


def test_the_install_fail_fault_breaks_the_prein_scriptlet() -> None:
    state = with_repo(**{"install-fail": True})

    status, out, err = run(state, "dnf -y install mdatp")

    assert status == 1 and err == "Error: Transaction failed\n"
    assert "error: %prein(mdatp-101.25092.0003-1.x86_64) scriptlet failed, exit status 1" in out
    assert "Failed:\n  mdatp-101.25092.0003-1.x86_64" in out
    assert run(state, "rpm -q mdatp")[1] == "package mdatp is not installed\n"
    assert run(state, "rpm -q mde-netfilter")[0] == 0


@pytest.mark.parametrize(
    ("fault", "detail"),
    [
        ("tls-inspection", "Curl error (60): Peer certificate cannot be authenticated with given CA certificates"),
        ("no-egress", "Curl error (28): Timeout was reached"),
    ],
)
def test_an_unreachable_repository_fails_metadata_download(fault: str, detail: str) -> None:
    state = with_repo()
    state.fault_box["faults"] = {fault: "zscaler" if fault == "tls-inspection" else True}  # type: ignore[attr-defined]

    status, _, err = run(state, f"dnf -q --enablerepo={REPO_ID} check-update mdatp")

    assert status == 1
    assert err.startswith(f"Errors during downloading metadata for repository '{REPO_ID}':\n  - {detail} for ")
    assert err.endswith("Cannot download repodata/repomd.xml: All mirrors were tried\n")


def test_an_unknown_proxy_in_the_environment_stops_dnf() -> None:
    state = with_repo()

    err = run(state, "https_proxy=http://nowhere.example:3128 dnf -y install mdatp")[2]

    assert "Curl error (5): Couldn't resolve proxy name" in err


def test_remove_takes_the_agent_away_and_keeps_its_configuration() -> None:
    state = with_repo()
    run(state, "dnf -y install mdatp && echo '{}' > /etc/opt/microsoft/mdatp/managed/mdatp_managed.json")

    status, out, _ = run(state, "dnf -y remove mdatp")

    assert status == 0 and "Removed:\n  mdatp-101.25092.0003-1.x86_64\n\nComplete!\n" in out
    assert run(state, "rpm -q mdatp")[0] == 1
    assert run(state, "command -v mdatp")[0] == 1
    assert run(state, "ls /opt/microsoft")[1] == ""
    assert "wdavdaemon" not in run(state, "ps -eo args=")[1]
    assert run(state, "test -f /etc/opt/microsoft/mdatp/managed/mdatp_managed.json")[0] == 0
    assert run(state, "dnf -y remove mdatp")[2] == "No packages marked for removal.\n"


def test_rpm_imports_an_armored_key_and_refuses_anything_else() -> None:
    state = make_state("rhel-8.10")
    run(state, "curl -sS -o /etc/pki/rpm-gpg/microsoft.asc https://packages.microsoft.com/keys/microsoft.asc")

    assert run(state, "rpm --import /etc/pki/rpm-gpg/microsoft.asc") == (0, "", "")
    assert run(state, "rpm -q gpg-pubkey")[1] == "gpg-pubkey-be1229cf-5631588c\n"
    assert run(state, "rpm --import /etc/hosts")[2] == "error: /etc/hosts: key 1 not an armored public key.\n"
    assert run(state, "rpm --import /nope")[2] == "error: /nope: import read failed(2).\n"


def test_package_managers_need_root() -> None:
    state = with_repo()

    assert run(state, "dnf -y install mdatp", user="deploy")[2].startswith(
        "Error: This command has to be run with superuser privileges"
    )
    assert run(make_state("rhel-7.9"), "yum -y install mdatp", user="deploy")[2] == (
        "You need to be root to perform this command.\n"
    )
    assert run(state, "sudo -n dnf -y install mdatp", user="deploy")[0] == 0


def test_crontab_keeps_the_table_in_the_spool() -> None:
    state = make_state("rhel-9.4")

    assert run(state, "crontab -l") == (1, "", "no crontab for root\n")
    assert run(state, "echo '0 2 * * 6 /bin/mdatp scan quick' | crontab -")[0] == 0
    assert run(state, "crontab -l")[1] == "0 2 * * 6 /bin/mdatp scan quick\n"
    assert run(state, "stat -c %a /var/spool/cron/root")[1] == "600\n"
