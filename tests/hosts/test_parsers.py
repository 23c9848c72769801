"""The parsers read real tools' output: captures in tests/samples/ written in each tool's exact format."""

from __future__ import annotations

from pathlib import Path

import pytest

from hosts.parsers import (
    Probe,
    cpu_busy_pct,
    issuer_is_microsoft,
    parse_curl_probe,
    parse_df,
    parse_df_inodes,
    parse_dn,
    parse_etime,
    parse_fanotify_holders,
    parse_kernel_config,
    parse_loadavg,
    parse_meminfo,
    parse_os_release,
    parse_proc_stat_cpu,
    parse_ps,
    parse_ps_args,
    parse_redhat_release,
    parse_systemctl_is_active,
    parse_tls_certificate,
    parse_tls_issuer,
    process_name,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


# --- os-release and redhat-release ----------------------------------------------------------------


def test_it_reads_quoted_os_release_values() -> None:
    fields = parse_os_release(sample("os-release/rhel-9.4"))

    assert fields["ID"] == "rhel"
    assert fields["VERSION_ID"] == "9.4"
    assert fields["PRETTY_NAME"] == "Red Hat Enterprise Linux 9.4 (Plow)"
    assert fields["REDHAT_BUGZILLA_PRODUCT_VERSION"] == "9.4"


def test_it_reads_unquoted_and_empty_os_release_values() -> None:
    fields = parse_os_release(sample("os-release/fedora-40"))

    assert fields["ID"] == "fedora"
    assert fields["VERSION_ID"] == "40"
    assert fields["VERSION_CODENAME"] == ""
    assert fields["ANSI_COLOR"] == "0;38;2;60;110;180"


def test_it_reads_os_release_escapes_and_skips_comments() -> None:
    text = '# a comment\nNAME="Contoso \\"Hardened\\" Linux"\nBROKEN LINE\nVERSION_ID=\'1.0\'\n'

    assert parse_os_release(text) == {"NAME": 'Contoso "Hardened" Linux', "VERSION_ID": "1.0"}


def test_centos_7_os_release_carries_only_the_major_version() -> None:
    assert parse_os_release(sample("os-release/centos-7.9"))["VERSION_ID"] == "7"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rhel-6.10", ("rhel", "6.10", "Santiago")),
        ("centos-6.10", ("centos", "6.10", "Final")),
        ("centos-7.9", ("centos", "7.9.2009", "Core")),
        ("rhel-5.11", ("rhel", "5.11", "Tikanga")),
        ("rocky-9.4", ("rocky", "9.4", "Blue Onyx")),
        ("alma-9.4", ("almalinux", "9.4", "Seafoam Ocelot")),
        ("ol-8.10", ("rhel", "8.10", "Ootpa")),  # Oracle Linux ships RHEL's wording here
    ],
)
def test_it_reads_redhat_release_lines(name: str, expected: tuple[str, str, str]) -> None:
    parsed = parse_redhat_release(sample(f"redhat-release/{name}"))

    assert (parsed["id"], parsed["version_id"], parsed["codename"]) == expected


def test_it_keeps_the_whole_redhat_release_line_as_the_display_name() -> None:
    parsed = parse_redhat_release(sample("redhat-release/rhel-6.10"))

    assert parsed["pretty_name"] == "Red Hat Enterprise Linux Server release 6.10 (Santiago)"
    assert parsed["name"] == "Red Hat Enterprise Linux Server"


def test_it_returns_nothing_for_a_line_that_is_not_a_release() -> None:
    assert parse_redhat_release("") == {}
    assert parse_redhat_release("Welcome to host web01\n") == {}


# --- /proc/meminfo ----------------------------------------------------------------------------------


def test_it_reads_meminfo_with_memavailable_in_mb() -> None:
    memory = parse_meminfo(sample("meminfo/rhel9"))

    assert memory == {
        "total_mb": 7685.2,  # 7,869,676 kB
        "available_mb": 6734.1,  # MemAvailable 6,895,732 kB
        "used_mb": 951.1,  # total - available
        "free_mb": 5109.8,
        "swap_total_mb": 4096.0,
        "swap_used_mb": 128.0,  # 4,194,300 - 4,063,228 kB
        "available_estimated": False,
    }


def test_it_estimates_available_memory_on_a_kernel_without_memavailable() -> None:
    memory = parse_meminfo(sample("meminfo/rhel6"))

    # MemFree 153,220 + Buffers 142,648 + Cached 1,110,224 = 1,406,092 kB
    assert memory["available_mb"] == round(1406092 / 1024, 1)
    assert memory["used_mb"] == round((1922472 - 1406092) / 1024, 1)
    assert memory["available_estimated"] is True
    assert memory["swap_used_mb"] == round((4128764 - 4103024) / 1024, 1)


def test_it_leaves_memory_unknown_when_meminfo_is_missing() -> None:
    memory = parse_meminfo("")

    assert memory["total_mb"] is None
    assert memory["used_mb"] is None
    assert memory["swap_total_mb"] is None


# --- /proc/stat and /proc/loadavg ---------------------------------------------------------------


def test_it_computes_cpu_busy_from_known_counters() -> None:
    first = parse_proc_stat_cpu("cpu  100 0 50 800 50 0 0 0 0 0")
    second = parse_proc_stat_cpu("cpu  160 0 70 900 70 0 0 0 0 0")
    assert first is not None and second is not None

    # total +200; idle +100 and iowait +20 are not busy: 80 / 200
    assert cpu_busy_pct(first, second) == 40.0


def test_it_computes_cpu_busy_from_a_real_proc_stat_capture() -> None:
    first = parse_proc_stat_cpu(sample("proc-stat/rhel9-t0"))
    second = parse_proc_stat_cpu(sample("proc-stat/rhel9-t1"))
    assert first is not None and second is not None

    # user +200, system +100, idle +500, iowait +100: 300 busy of 900
    assert cpu_busy_pct(first, second) == 33.3


def test_it_reads_the_seven_counter_layout_of_old_kernels() -> None:
    first = parse_proc_stat_cpu(sample("proc-stat/kernel-2.6.10-t0"))
    second = parse_proc_stat_cpu(sample("proc-stat/kernel-2.6.10-t1"))
    assert first is not None and second is not None

    assert first["steal"] == 0 and first["fields"] == 7
    assert cpu_busy_pct(first, second) == 60.0


def test_it_does_not_count_guest_time_twice() -> None:
    # guest (50) is already inside user (100): the total is 200, not 250.
    first = parse_proc_stat_cpu("cpu  0 0 0 0 0 0 0 0 0 0")
    second = parse_proc_stat_cpu("cpu  100 0 0 100 0 0 0 0 50 0")
    assert first is not None and second is not None

    assert cpu_busy_pct(first, second) == 50.0


def test_it_gives_no_cpu_figure_when_the_counters_did_not_move() -> None:
    reading = parse_proc_stat_cpu("cpu  100 0 50 800 50 0 0 0 0 0")
    assert reading is not None

    assert cpu_busy_pct(reading, reading) is None


def test_it_keeps_cpu_busy_within_bounds_when_iowait_runs_backwards() -> None:
    first = parse_proc_stat_cpu("cpu  100 0 0 100 500 0 0 0")
    second = parse_proc_stat_cpu("cpu  300 0 0 100 450 0 0 0")
    assert first is not None and second is not None

    assert cpu_busy_pct(first, second) == 100.0


def test_it_rejects_a_line_that_is_not_the_cpu_line() -> None:
    assert parse_proc_stat_cpu("") is None
    assert parse_proc_stat_cpu("cpu0 1 2 3 4 5") is None
    assert parse_proc_stat_cpu("head: cannot open '/proc/stat'") is None


def test_it_reads_loadavg() -> None:
    assert parse_loadavg(sample("loadavg/rhel9")) == {
        "load_1": 0.42,
        "load_5": 0.35,
        "load_15": 0.30,
        "running": 2,
        "total": 345,
        "last_pid": 12873,
    }
    assert parse_loadavg("cat: /proc/loadavg: No such file or directory") is None


# --- df -------------------------------------------------------------------------------------------


def test_it_reads_df_with_types_and_drops_bind_mounts() -> None:
    rows = parse_df(sample("df/rhel9-typed"), with_type=True, dedupe=True)

    mounts = [row["mount"] for row in rows]
    assert "/srv/exports/home" not in mounts  # the bind mount of /home
    assert mounts.count("/home") == 1
    assert len(rows) == 10
    assert rows[0] == {
        "device": "/dev/mapper/rhel-root",
        "type": "xfs",
        "mount": "/",
        "size_kb": 36678148,
        "used_kb": 9271232,
        "avail_kb": 27406916,
        "use_pct": 26,
    }


def test_it_keeps_every_tmpfs_because_they_are_distinct_filesystems() -> None:
    rows = parse_df(sample("df/rhel9-typed"), with_type=True, dedupe=True)

    assert [r["mount"] for r in rows if r["type"] == "tmpfs"] == ["/dev/shm", "/run", "/run/user/1000"]


def test_it_keeps_bind_mounts_when_not_asked_to_dedupe() -> None:
    rows = parse_df(sample("df/rhel9-typed"), with_type=True)

    assert len(rows) == 11


def test_it_reads_a_mount_point_with_a_space_and_a_full_filesystem() -> None:
    rows = {row["mount"]: row for row in parse_df(sample("df/rhel9-typed"), with_type=True)}

    assert rows["/mnt/backup disk"]["device"] == "/dev/sdb1"
    assert rows["/mnt/backup disk"]["type"] == "ext4"
    assert rows["/var/lib/pgsql"]["use_pct"] == 100
    assert rows["/var/lib/pgsql"]["avail_kb"] == 0


def test_it_joins_device_names_that_df_wrapped_onto_their_own_line() -> None:
    rows = parse_df(sample("df/rhel6-wrapped"), with_type=False)

    assert [(r["device"], r["mount"]) for r in rows] == [
        ("/dev/mapper/vg_db01-lv_root", "/"),
        ("tmpfs", "/dev/shm"),
        ("/dev/sda1", "/boot"),
        ("/dev/mapper/vg_db01-lv_oracle_data_01", "/u01/app/oracle/oradata"),
    ]
    assert rows[3]["use_pct"] == 100
    assert rows[0]["type"] is None


def test_it_joins_wrapped_device_names_in_typed_output_too() -> None:
    rows = parse_df(sample("df/rhel6-wrapped-typed"), with_type=True)

    assert rows[0]["device"] == "/dev/mapper/vg_db01-lv_root"
    assert rows[0]["type"] == "ext4"
    assert rows[0]["size_kb"] == 51475068


def test_it_skips_df_error_lines() -> None:
    rows = parse_df(sample("df/requirements-no-opt"), with_type=False)

    assert [r["mount"] for r in rows] == ["/var", "/"]


def test_it_reads_dashes_as_unknown_values() -> None:
    text = "Filesystem Type 1024-blocks Used Available Capacity Mounted on\nsystemd-1 autofs - - - - /proc/sys/fs/binfmt_misc\n"

    row = parse_df(text, with_type=True)[0]

    assert row["size_kb"] is None and row["use_pct"] is None
    assert row["mount"] == "/proc/sys/fs/binfmt_misc"


def test_it_reads_inode_use_including_filesystems_without_inodes() -> None:
    rows = {row["mount"]: row for row in parse_df_inodes(sample("df/rhel9-inodes"))}

    assert rows["/"] == {
        "device": "/dev/mapper/rhel-root",
        "mount": "/",
        "inodes": 18349056,
        "inodes_used": 189201,
        "inodes_free": 18159855,
        "inodes_use_pct": 2,
    }
    assert rows["/boot/efi"]["inodes_use_pct"] is None
    assert rows["/mnt/backup disk"]["inodes_used"] == 11822


# --- ps -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("etime", "seconds"),
    [("00:00", 0), ("03:12", 192), ("01:02:03", 3723), ("12-03:44:10", 12 * 86400 + 3 * 3600 + 44 * 60 + 10)],
)
def test_it_converts_etime_to_seconds(etime: str, seconds: int) -> None:
    assert parse_etime(etime) == seconds


def test_it_gives_no_seconds_for_a_malformed_etime() -> None:
    assert parse_etime("-") is None
    assert parse_etime("1:2:3:4") is None


def test_it_reads_right_aligned_ps_columns_and_args_with_spaces() -> None:
    processes = parse_ps(sample("ps/rhel9-by-cpu"))

    assert len(processes) == 20
    assert processes[1] == {
        "pid": 4245,
        "ppid": 4187,
        "user": "mdatp",
        "cpu_pct": 11.8,
        "mem_pct": 2.9,
        "rss_kb": 234504,
        "vsz_kb": 2235612,
        "elapsed_s": 12 * 86400 + 3 * 3600 + 44 * 60 + 8,
        "name": "wdavdaemon",
        "role": "unprivileged",
        "args": "wdavdaemon unprivileged 11 14 --log_level info",
    }


def test_it_tells_the_wdavdaemon_processes_apart() -> None:
    processes = parse_ps(sample("ps/rhel9-agent"))

    roles = {p["pid"]: (p["name"], p["role"]) for p in processes}
    assert roles[4187] == ("wdavdaemon", "")
    assert roles[4244] == ("wdavdaemon", "edr")
    assert roles[4245] == ("wdavdaemon", "unprivileged")
    assert roles[4251] == ("telemetryd_v2", "")
    assert roles[4190] == ("crashpad_handler", "")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("postgres: checkpointer", ("postgres", "checkpointer")),
        ("sshd: alice [priv]", ("sshd", "alice [priv]")),
        ("[kworker/1:2-events]", ("kworker/1:2-events", "")),
        ("-bash", ("-bash", "")),
        ("/usr/bin/python3 -s /usr/sbin/firewalld --nofork", ("python3", "")),
        ("wdavdaemon edr 12 11 --log_level info", ("wdavdaemon", "edr")),
        ("", ("", "")),
    ],
)
def test_it_names_a_process_from_its_command_line(args: str, expected: tuple[str, str]) -> None:
    assert process_name(args) == expected


def test_it_skips_lines_that_are_not_ps_lines() -> None:
    text = "grep: write error\n   4187       1 root     23.4  3.2 258312 1612424 12-03:44:10 /opt/x\nabc def\n"

    assert [p["pid"] for p in parse_ps(text)] == [4187]


def test_it_reads_pid_and_args_listings() -> None:
    table = parse_ps_args(sample("ps-args/rhel9-mdatp-fapolicyd"))

    assert table[812] == "/usr/sbin/fapolicyd"
    assert table[4244] == "wdavdaemon edr 12 11 --log_level info"
    assert table[2] == "[kthreadd]"


# --- curl -----------------------------------------------------------------------------------------


def probes(name: str) -> list[Probe | None]:
    """Each endpoint's section of a network-step capture (behind its ``@@probe-N`` line), parsed on its own."""
    chunks = sample(name).split("@@probe-")[1:]
    return [parse_curl_probe(chunk.partition("\n")[2]) for chunk in chunks]


def test_it_reads_probe_lines_when_everything_answers() -> None:
    found = probes("curl/reach-all-ok")

    assert len(found) == 5
    assert all(p is not None and p["ok"] and p["http_code"] == "200" and p["error"] is None for p in found)


def test_it_pairs_a_curl_error_printed_before_the_write_out_line_as_curl_7_76_does() -> None:
    found = probes("curl/reach-blocked")

    assert [(p["url"], p["ok"], p["curl_code"]) for p in found if p] == [
        ("https://x.cp.wd.microsoft.com/api/report", False, 28),
        ("https://cdn.x.cp.wd.microsoft.com/ping", True, None),
        ("https://winatp-gw-cus.microsoft.com/test", False, 6),
        ("https://us-v20.events.data.microsoft.com/ping", True, None),
        ("https://packages.microsoft.com/keys/microsoft.asc", True, None),
    ]
    assert found[2] is not None
    assert found[2]["error"] == "Could not resolve host: winatp-gw-cus.microsoft.com"


def test_it_pairs_a_curl_error_printed_after_the_write_out_line_as_curl_7_61_does() -> None:
    assert probes("curl/reach-blocked-rhel8") == probes("curl/reach-blocked")


@pytest.mark.parametrize(
    "text",
    [
        "000 https://a.example/\ncurl: (7) Failed to connect to a.example port 443: Connection refused\n",
        "curl: (7) Failed to connect to a.example port 443: Connection refused\n000 https://a.example/\n",
    ],
)
def test_one_transfer_reads_the_same_in_either_order(text: str) -> None:
    assert parse_curl_probe(text) == {
        "url": "https://a.example/",
        "http_code": "000",
        "ok": False,
        "curl_code": 7,
        "error": "Failed to connect to a.example port 443: Connection refused",
    }


def test_it_skips_the_explanation_curl_prints_after_a_certificate_error() -> None:
    found = probes("curl/reach-tls-untrusted-openssl")

    assert {p["curl_code"] for p in found if p} == {60}
    assert found[0] is not None
    assert found[0]["error"] == "SSL certificate problem: unable to get local issuer certificate"


def test_it_reads_nss_certificate_errors_and_handshake_failures() -> None:
    found = probes("curl/reach-tls-untrusted-nss")

    assert [p["curl_code"] if p else "?" for p in found] == [None, None, 60, 35, None]
    assert found[2] is not None
    assert found[2]["error"] == "Peer's Certificate issuer is not recognized."


def test_it_finds_no_probe_when_curl_is_missing() -> None:
    assert probes("curl/reach-no-curl") == [None] * 5
    assert parse_curl_probe("") is None


def test_it_reads_the_issuer_from_openssl_curl() -> None:
    certificate = parse_tls_certificate(sample("curl/tls-openssl-microsoft"))

    assert certificate == {
        "subject": "C=US; ST=WA; L=Redmond; O=Microsoft Corporation; CN=winatp-gw-cus.microsoft.com",
        "issuer": "C=US; O=Microsoft Corporation; CN=Microsoft Azure RSA TLS Issuing CA 04",
        "verify": "SSL certificate verify ok.",
    }


def test_it_reads_the_tab_indented_issuer_of_nss_curl() -> None:
    assert parse_tls_issuer(sample("curl/tls-nss-microsoft")) == (
        "CN=Microsoft Azure TLS Issuing CA 05,O=Microsoft Corporation,C=US"
    )


def test_it_reads_the_issuer_behind_a_proxy_tunnel() -> None:
    issuer = parse_tls_issuer(sample("curl/tls-zscaler"))

    assert issuer is not None and "O=Zscaler Inc." in issuer


def test_it_ignores_the_certificate_of_an_https_proxy() -> None:
    text = (
        "* Proxy certificate:\n*  subject: CN=proxy.corp.example\n*  issuer: CN=Contoso Root\n"
        "* Server certificate:\n*  subject: CN=winatp-gw-cus.microsoft.com\n"
        "*  issuer: C=US; O=Microsoft Corporation; CN=Microsoft Azure RSA TLS Issuing CA 08\n"
    )

    assert parse_tls_issuer(text) == "C=US; O=Microsoft Corporation; CN=Microsoft Azure RSA TLS Issuing CA 08"


def test_it_finds_no_issuer_when_the_connection_failed() -> None:
    assert parse_tls_issuer(sample("curl/tls-unreachable")) is None


def test_it_reads_distinguished_names_in_every_form_curl_prints() -> None:
    assert parse_dn("C=US; O=DigiCert Inc; CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1") == {
        "C": "US",
        "O": "DigiCert Inc",
        "CN": "DigiCert Global G2 TLS RSA SHA256 2020 CA1",
    }
    assert parse_dn('CN=Contoso Forward Trust CA,OU=Network Security,O="Contoso, Ltd.",C=US')["O"] == "Contoso, Ltd."
    assert parse_dn("/C=IE/O=Baltimore/OU=CyberTrust/CN=Baltimore CyberTrust Root")["CN"] == (
        "Baltimore CyberTrust Root"
    )


@pytest.mark.parametrize(
    ("issuer", "trusted"),
    [
        ("C=US; O=Microsoft Corporation; CN=Microsoft Azure RSA TLS Issuing CA 04", True),
        ("CN=Microsoft Azure TLS Issuing CA 05,O=Microsoft Corporation,C=US", True),
        ("C=US; O=DigiCert Inc; CN=DigiCert SHA2 Secure Server CA", True),
        ("C=IE; O=Baltimore; OU=CyberTrust; CN=Baltimore CyberTrust Root", True),
        ("CN=Microsoft RSA TLS CA 01", True),
        ("C=US; ST=California; O=Zscaler Inc.; CN=Zscaler Intermediate Root CA (zscalerthree.net) (t )", False),
        ('CN=Contoso Forward Trust CA,OU=Microsoft bypass,O="Contoso, Ltd.",C=US', False),
        ("C=US; O=Palo Alto Networks; CN=PAN Forward Trust", False),
        ("", False),
        (None, False),
    ],
)
def test_it_trusts_only_microsoft_digicert_and_baltimore_issuers(issuer: str | None, trusted: bool) -> None:
    assert issuer_is_microsoft(issuer) is trusted


# --- kernel config, systemctl, fanotify -------------------------------------------------------------


def test_it_reads_kernel_config_lines_and_not_set_comments() -> None:
    options = parse_kernel_config(sample("kconfig/config-3.10.0-1160.el7.x86_64-excerpt"))

    assert options["CONFIG_FANOTIFY"] == "y"
    assert options["CONFIG_FANOTIFY_ACCESS_PERMISSIONS"] == "y"
    assert options["CONFIG_QUOTA_DEBUG"] == "n"
    assert options["CONFIG_QFMT_V2"] == "m"
    assert options["CONFIG_DEFAULT_HOSTNAME"] == "(none)"


def test_it_reads_a_fanotify_option_that_is_not_set() -> None:
    assert parse_kernel_config(sample("kconfig/grep-no-permissions")) == {
        "CONFIG_FANOTIFY": "y",
        "CONFIG_FANOTIFY_ACCESS_PERMISSIONS": "n",
    }


def test_it_reads_one_systemctl_state_per_unit_in_order() -> None:
    units = ["ds_agent", "cbsensor", "MFEcma"]

    assert parse_systemctl_is_active(units, sample("systemctl/ds-agent-active")) == {
        "ds_agent": "active",
        "cbsensor": "inactive",
        "MFEcma": "inactive",
    }
    assert parse_systemctl_is_active(units, sample("systemctl/rhel7-unknown-units"))["ds_agent"] == "unknown"


def test_it_leaves_unit_states_unknown_without_systemctl() -> None:
    assert parse_systemctl_is_active(["ds_agent"], "") == {"ds_agent": None}


def test_it_names_each_fanotify_holder_once() -> None:
    holders = parse_fanotify_holders(sample("fanotify/mdatp-and-fapolicyd"), sample("ps-args/rhel9-mdatp-fapolicyd"))

    assert holders == [
        {"pid": 812, "args": "/usr/sbin/fapolicyd"},
        {"pid": 4187, "args": "/opt/microsoft/mdatp/sbin/wdavdaemon"},
    ]


def test_it_keeps_a_fanotify_holder_that_exited_with_empty_args() -> None:
    holders = parse_fanotify_holders(sample("fanotify/exited"), sample("ps-args/rhel9-mdatp-fapolicyd"))

    assert holders == [{"pid": 77001, "args": ""}]
