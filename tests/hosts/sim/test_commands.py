"""Command outputs in the formats of the real tools (procps, coreutils, util-linux, curl, /proc)."""

from __future__ import annotations

import re

import pytest

from tests.hosts.sim.util import make_state, run


def test_df_posix_type_columns_are_aligned_like_coreutils() -> None:
    out = run(make_state("rhel-9.4"), "df -P -T -k")[1].splitlines()
    header = out[0]
    assert re.fullmatch(r"Filesystem +Type +1024-blocks +Used +Available +Capacity Mounted on", header)
    # Right-aligned numbers end under their header; the mount point starts under "Mounted on".
    used_end = header.index("Used") + len("Used")
    mount_col = header.index("Mounted on")
    for line in out[1:]:
        assert line[:used_end].split()[-1].isdigit()
        assert line[used_end] == " "
        assert line[mount_col] == "/" and line[mount_col - 1] == " "
    root = next(line for line in out if line.endswith(" /"))
    used, avail, pct = root.split()[3:6]
    assert int(pct[:-1]) == -(-int(used) * 100 // (int(used) + int(avail)))


def test_df_with_paths_shows_the_filesystem_holding_each() -> None:
    out = run(make_state("rhel-9.4"), "df -P -k /opt /tmp /proc/meminfo")[1].splitlines()
    assert [line.split()[-1] for line in out[1:]] == ["/", "/", "/proc"]
    status, _, err = run(make_state("rhel-9.4"), "df -P /nonexistent")
    assert status == 1 and err == "df: /nonexistent: No such file or directory\n"


def test_df_excludes_types_and_reports_inodes() -> None:
    state = make_state("rhel-8.10")
    assert "devtmpfs" not in run(state, "df -P -T -k -x devtmpfs -x squashfs")[1]
    header = run(state, "df -P -i")[1].splitlines()[0]
    assert re.fullmatch(r"Filesystem +Inodes +IUsed +IFree IUse% Mounted on", header)
    assert run(state, "df -P -m /")[1].splitlines()[0].split()[1] == "1048576-blocks"


def test_old_coreutils_df_keeps_its_fixed_layout() -> None:
    out = run(make_state("rhel-6.10"), "df -P -T -k")[1].splitlines()
    assert out[0] == "Filesystem    Type 1024-blocks      Used Available Capacity Mounted on"
    shm = next(line for line in out if line.endswith("/dev/shm"))
    assert shm.startswith("tmpfs        tmpfs ") and shm.index("0%") == out[0].index("Capacity") + len("Capacity") - 2


def test_free_uses_the_procps_ng_layout_and_the_old_one_on_rhel_6() -> None:
    new = run(make_state("rhel-8.10"), "free -m")[1].splitlines()
    assert new[0] == "              total        used        free      shared  buff/cache   available"
    assert re.fullmatch(r"Mem: +\d+ +\d+ +\d+ +\d+ +\d+ +\d+", new[1]) and len(new[1]) == len(new[0])
    rhel9 = run(make_state("rhel-9.4"), "free")[1].splitlines()
    assert rhel9[0].startswith("               total") and len(rhel9[1]) == len(rhel9[0])
    old = run(make_state("rhel-6.10"), "free -m")[1].splitlines()
    assert old[0] == "             total       used       free     shared    buffers     cached"
    assert old[2].startswith("-/+ buffers/cache:") and old[3].startswith("Swap:")
    total_kb = int(run(make_state("rhel-8.10"), "free -k")[1].splitlines()[1].split()[1])
    assert int(run(make_state("rhel-8.10"), "free -b")[1].splitlines()[1].split()[1]) == total_kb * 1024


def test_meminfo_lines_are_padded_like_the_kernels() -> None:
    text = run(make_state("rhel-9.4"), "cat /proc/meminfo")[1]
    assert re.match(r"MemTotal: +\d+ kB\nMemFree: +\d+ kB\nMemAvailable: +\d+ kB\n", text)
    for line in text.splitlines():
        assert line.endswith(" kB") or line.startswith("HugePages_")
        assert len(line.removesuffix(" kB")) >= 24
    assert "\nHardwareCorrupted:     0 kB\n" in text and "\nHugePages_Total:       0\n" in text
    assert "MemAvailable" not in run(make_state("rhel-5.11"), "cat /proc/meminfo")[1]


def test_proc_stat_counters_advance_with_a_sensible_busy_share() -> None:
    state = make_state("rhel-9.4", time_scale=0.01)
    out = run(state, "head -n 1 /proc/stat; sleep 2; head -n 1 /proc/stat")[1].splitlines()
    first, second = ([int(x) for x in line.split()[1:]] for line in out)
    assert out[0].startswith("cpu  ") and len(first) == 10
    delta = [b - a for a, b in zip(first, second, strict=True)]
    assert all(d >= 0 for d in delta)
    total = sum(delta)
    cores = int(run(state, "nproc")[1])
    # 2 simulated seconds of USER_HZ ticks on every core (plus the commands' own simulated time).
    assert 200 * cores <= total <= 240 * cores
    busy = 1 - (delta[3] + delta[4]) / total
    assert 0.02 < busy < 0.45


def test_loadavg_and_uptime_have_their_kernel_formats() -> None:
    state = make_state("rhel-8.10")
    assert re.fullmatch(r"\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+/\d+ \d+\n", run(state, "cat /proc/loadavg")[1])
    assert re.fullmatch(r"\d+\.\d\d \d+\.\d\d\n", run(state, "cat /proc/uptime")[1])


def test_ps_right_aligns_columns_and_sizes_pids_from_pid_max() -> None:
    out = run(make_state("rhel-9.4"), "ps -eo pid=,ppid=,user=,pcpu=,pmem=,rss=,vsz=,etime=,args=")[1].splitlines()
    assert out[0].startswith("      1       0 root ")
    assert any(line.split(None, 8)[8].startswith("[kthreadd]") for line in out)
    old = run(make_state("rhel-7.9"), "ps -eo pid=,args=")[1].splitlines()
    assert old[0] == "    1 /usr/lib/systemd/systemd --switched-root --system --deserialize 22"
    for line in out:
        _pid, _ppid, _user, pcpu, pmem, _rss, _vsz, etime, _args = line.split(None, 8)
        assert re.fullmatch(r"\d+\.\d|\d+", pcpu) and re.fullmatch(r"\d+\.\d", pmem)
        assert re.fullmatch(r"(\d+-)?(\d\d:)?\d\d:\d\d", etime)


def test_ps_sorts_and_selects() -> None:
    state = make_state("rhel-9.4")
    fields = "pid=,ppid=,user=,pcpu=,pmem=,rss=,vsz=,etime=,args="
    by_cpu = [
        float(line.split()[3]) for line in run(state, f"ps -eo {fields} --sort=-pcpu | head -n 25")[1].splitlines()
    ]
    assert by_cpu == sorted(by_cpu, reverse=True) and len(by_cpu) == 25
    by_rss = [int(line.split()[5]) for line in run(state, f"ps -eo {fields} --sort=-rss")[1].splitlines()]
    assert by_rss == sorted(by_rss, reverse=True)
    assert run(state, "ps -p 1 -o comm=")[1] == "systemd\n"
    assert run(make_state("rhel-6.10"), "ps -p 1 -o comm=")[1] == "init\n"
    assert run(state, "ps -C sshd -o pid=")[1].strip()
    header = run(state, "ps -o pid,user,args -p 1")[1].splitlines()[0]
    assert header == "    PID USER     COMMAND"


def test_ps_shows_process_names_with_spaces_and_its_own_shell() -> None:
    state = make_state("rhel-8.10", index=4)  # a web host: php-fpm pool workers
    args = run(state, "ps -eo args=")[1]
    assert "php-fpm: pool www" in args or "postgres: " in args or "org.apache.catalina" in args or "jenkins.war" in args
    assert "ps -eo args=" in args


def test_uname_hostname_nproc_id_getenforce() -> None:
    state = make_state("rhel-9.4")
    assert run(state, "uname -r; uname -m; uname -s")[1] == f"{state.spec.kernel}\nx86_64\nLinux\n"
    assert run(state, "uname -a")[1].endswith(" x86_64 x86_64 x86_64 GNU/Linux\n")
    assert run(state, "hostname")[1] == state.spec.hostname + "\n"
    assert run(state, "nproc --all")[1] == f"{state.spec.cores}\n"
    assert run(state, "id -u; whoami")[1] == "0\nroot\n"
    assert run(state, "getenforce")[1] in ("Enforcing\n", "Permissive\n")
    assert run(make_state("debian-12"), "uname -a")[1].endswith(" x86_64 GNU/Linux\n")


def test_systemctl_is_active_prints_one_state_per_unit() -> None:
    state = make_state("rhel-9.4")
    assert run(state, "systemctl is-active sshd crond") == (0, "active\nactive\n", "")
    assert run(state, "systemctl is-active ds_agent cbsensor MFEcma") == (3, "inactive\ninactive\ninactive\n", "")
    assert run(state, "systemctl is-active sshd ds_agent")[0] == 0  # any active unit is success, as systemd does
    assert run(make_state("rhel-7.9"), "systemctl is-active ds_agent")[1] == "unknown\n"
    assert run(state, "systemctl status sshd")[1].startswith("● sshd.service - OpenSSH server daemon\n")
    assert run(state, "systemctl status nosuch")[0::2] == (4, "Unit nosuch.service could not be found.\n")


def test_rpm_query_and_dpkg_world() -> None:
    state = make_state("rhel-9.4")
    assert run(state, "rpm -q mdatp") == (1, "package mdatp is not installed\n", "")
    assert re.fullmatch(r"bash-5\.1\.8-\S+\.el9\.x86_64\n", run(state, "rpm -q bash")[1])
    assert run(state, "rpm -q --qf '%{VERSION}\\n' curl")[1] == "7.76.1\n"
    debian = make_state("debian-12")
    assert run(debian, "rpm -q mdatp")[0] == 127
    assert run(debian, "dpkg -s mdatp")[0] == 1


def test_grep_options_behave_like_gnu_grep() -> None:
    state = make_state("rhel-9.4")
    run(state, "printf 'alpha\\nBeta\\ngamma\\n' > /tmp/g.txt")
    assert run(state, "grep -i beta /tmp/g.txt")[1] == "Beta\n"
    assert run(state, "grep -c a /tmp/g.txt")[1] == "3\n"
    assert run(state, "grep -v a /tmp/g.txt")[0] == 1
    assert run(state, "grep -E '^(alpha|gamma)$' /tmp/g.txt")[1] == "alpha\ngamma\n"
    assert run(state, "grep 'a\\(l\\|m\\)' /tmp/g.txt")[1] == "alpha\ngamma\n"
    assert run(state, "grep -l alpha /tmp/g.txt /etc/hosts")[1] == "/tmp/g.txt\n"
    assert run(state, "grep x /nope")[0::2] == (2, "grep: /nope: No such file or directory\n")
    assert run(state, "grep -E '^CONFIG_FANOTIFY(_ACCESS_PERMISSIONS)?=' /boot/config-$(uname -r)")[1] == (
        "CONFIG_FANOTIFY=y\nCONFIG_FANOTIFY_ACCESS_PERMISSIONS=y\n"
    )


@pytest.mark.parametrize("profile", ["rhel-7.9", "rhel-8.10", "rhel-9.4", "debian-12"])
def test_curl_write_out_reports_the_status_and_url(profile: str) -> None:
    out = run(
        make_state(profile),
        "curl -sS -o /dev/null --max-time 10 -w '%{http_code} %{url_effective}\\n' "
        "https://x.cp.wd.microsoft.com/api/report 2>&1",
    )
    assert out == (0, "200 https://x.cp.wd.microsoft.com/api/report\n", "")
    missing = run(make_state(profile), "curl -sS -o /dev/null -w '%{http_code}\\n' https://nosuch.invalid/ 2>&1")
    assert missing[0] == 6 and "curl: (6) Could not resolve host: nosuch.invalid" in missing[1] and "000" in missing[1]


def test_curl_verbose_shows_the_certificate_in_the_hosts_tls_library_format() -> None:
    nss = run(make_state("rhel-7.9"), "curl -skv -o /dev/null https://winatp-gw-cus.microsoft.com/test 2>&1")[1]
    assert "* Server certificate:\n* \tsubject: CN=winatp-gw-cus.microsoft.com,O=Microsoft Corporation" in nss
    assert "* \tissuer: CN=Microsoft Azure RSA TLS Issuing CA 04,O=Microsoft Corporation,C=US\n" in nss
    ossl = run(make_state("rhel-8.10"), "curl -skv -o /dev/null https://winatp-gw-cus.microsoft.com/test 2>&1")[1]
    assert "*  subject: C=US; ST=WA; L=Redmond; O=Microsoft Corporation; CN=winatp-gw-cus.microsoft.com\n" in ossl
    assert "*  issuer: C=US; O=Microsoft Corporation; CN=Microsoft Azure RSA TLS Issuing CA 04\n" in ossl
    assert "*  SSL certificate verify ok.\n" in ossl


def test_curl_through_an_unknown_proxy_fails_with_error_5() -> None:
    out = run(
        make_state("rhel-9.4"),
        "curl -sS -o /dev/null -x http://nowhere.invalid:3128 https://x.cp.wd.microsoft.com/ 2>&1",
    )
    assert out[0] == 5 and "curl: (5) Could not resolve proxy: nowhere.invalid" in out[1]
    ok = run(
        make_state("rhel-9.4"),
        "curl -sS -o /dev/null -x http://proxy.corp.example:3128 -w '%{http_code}' https://x.cp.wd.microsoft.com/ping",
    )
    assert ok == (0, "200", "")


def test_sha256sum_stat_ls_and_chmod() -> None:
    state = make_state("rhel-9.4")
    run(state, "printf abc > /tmp/f; chmod 600 /tmp/f")
    assert (
        run(state, "sha256sum /tmp/f")[1]
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  /tmp/f\n"
    )
    assert run(state, "stat -c '%a %U %s %F' /tmp/f")[1] == "600 root 3 regular file\n"
    assert run(state, "ls /tmp")[1].splitlines().count("f") == 1
