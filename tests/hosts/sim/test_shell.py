"""The mini shell: operators, quoting, expansion, redirections and wrappers, run against one host state."""

from __future__ import annotations

import pytest

from hosts.sim.state import HostState
from tests.hosts.sim.util import make_state, run


@pytest.fixture(scope="module")
def rhel9() -> HostState:
    return make_state("rhel-9.4")


def test_it_runs_sequences_and_and_or_lists(rhel9: HostState) -> None:
    assert run(rhel9, "echo a; false && echo no || echo yes; true && echo b") == (0, "a\nyes\nb\n", "")


def test_exit_status_is_the_last_commands(rhel9: HostState) -> None:
    assert run(rhel9, "true; false")[0] == 1
    assert run(rhel9, "false; true")[0] == 0
    assert run(rhel9, "exit 7; echo never") == (7, "", "")
    assert run(rhel9, "false; echo $?")[1] == "1\n"


def test_quotes_and_escapes_are_honoured(rhel9: HostState) -> None:
    _, out, _ = run(rhel9, """echo 'a  b' "c  $HOME" \\$HOME d\\ e "x\\"y" ''""")
    assert out == 'a  b c  /root $HOME d e x"y \n'


def test_variables_and_command_substitution_expand(rhel9: HostState) -> None:
    script = 'A=1; B="two words"; echo "$A-${B}-$(echo sub)-`echo tick`" ${MISSING:-default}'
    assert run(rhel9, script)[1] == "1-two words-sub-tick default\n"


def test_unquoted_expansions_are_split_into_fields(rhel9: HostState) -> None:
    assert run(rhel9, 'X="a b"; printf "[%s]" $X "$X"; echo')[1] == "[a][b][a b]\n"


def test_pipelines_feed_each_command_the_previous_output(rhel9: HostState) -> None:
    assert run(rhel9, "printf 'b\\na\\nc\\n' | sort | head -n 2")[1] == "a\nb\n"
    assert run(rhel9, "echo hello | grep -q hell && echo found")[1] == "found\n"
    assert run(rhel9, "! false")[0] == 0


def test_redirections_write_append_read_and_merge(rhel9: HostState) -> None:
    status, out, err = run(
        rhel9, "echo one > /tmp/r; echo two >> /tmp/r; cat < /tmp/r; cat /nope 2>&1; cat /nope 2>/dev/null"
    )
    assert out == "one\ntwo\ncat: /nope: No such file or directory\n"
    assert err == ""
    assert status == 1


def test_stdout_to_dev_null_and_stderr_to_stdout_order_matters(rhel9: HostState) -> None:
    assert run(rhel9, "cat /nope >/dev/null 2>&1")[1:] == ("", "")
    assert run(rhel9, "cat /nope 2>&1 >/dev/null")[1] == "cat: /nope: No such file or directory\n"


def test_cat_writes_stdin_into_a_file_that_mv_and_cat_then_see(rhel9: HostState) -> None:
    status, out, _ = run(
        rhel9,
        "cat > /tmp/upload.tmp && mv /tmp/upload.tmp /tmp/upload.json && cat /tmp/upload.json",
        stdin='{"a": 1}\n',
    )
    assert (status, out) == (0, '{"a": 1}\n')
    assert run(rhel9, "test -e /tmp/upload.tmp || echo gone")[1] == "gone\n"


def test_globs_expand_against_the_virtual_filesystem(rhel9: HostState) -> None:
    run(rhel9, "mkdir -p /tmp/g && touch /tmp/g/a1 /tmp/g/a2 /tmp/g/b1")
    assert run(rhel9, "echo /tmp/g/a*")[1] == "/tmp/g/a1 /tmp/g/a2\n"
    assert run(rhel9, "echo /tmp/g/[b]?")[1] == "/tmp/g/b1\n"
    assert run(rhel9, "echo '/tmp/g/a*' /tmp/g/z*")[1] == "/tmp/g/a* /tmp/g/z*\n"
    assert run(rhel9, "echo /proc/1/fdinfo/0 /proc/[0-9]*/cmdline | wc -w")[1].strip() != "2"


def test_unknown_commands_fail_with_127_in_the_shells_format() -> None:
    assert run(make_state("rhel-8.10"), "foo")[0::2] == (127, "bash: foo: command not found\n")
    assert run(make_state("rhel-9.4"), "true\nfoo")[2] == "bash: line 2: foo: command not found\n"
    assert run(make_state("rhel-6.10"), "sh -c systemctl")[2] == "sh: systemctl: command not found\n"
    assert run(make_state("debian-12"), "sh -c rpm")[2] == "sh: 1: rpm: not found\n"


def test_syntax_errors_exit_2(rhel9: HostState) -> None:
    status, _, err = run(rhel9, "echo (")
    assert status == 2 and "syntax error" in err


def test_sh_c_and_wrappers_are_interpreted_recursively(rhel9: HostState) -> None:
    script = 'sudo -n sh -c \'timeout --kill-after=5 10 sh -c "env A=1 sh -c \\"echo \\\\\\$A; id -u\\""\''
    assert run(rhel9, script, user="deploy") == (0, "1\n0\n", "")
    assert run(rhel9, "X=5 sh -c 'echo $X'; exec echo last; echo never")[1] == "5\nlast\n"


def test_timeout_stops_a_command_that_runs_too_long(rhel9: HostState) -> None:
    # timeout counts real seconds (the client's clock); sleep 50 takes 0.5 s at this time scale.
    assert run(rhel9, "timeout 0.1 sleep 50; echo $?")[1] == "124\n"
    assert run(rhel9, "timeout 5 sleep 1; echo $?")[1] == "0\n"


def test_a_non_root_user_is_refused_privileged_files_unless_sudo(rhel9: HostState) -> None:
    status, _, err = run(rhel9, "echo x > /etc/opt/test.conf", user="deploy")
    assert status == 1 and err == "bash: line 1: /etc/opt/test.conf: Permission denied\n"
    assert run(rhel9, "cat /etc/shadow", user="deploy")[2] == "cat: /etc/shadow: Permission denied\n"
    assert (
        run(rhel9, "sudo -n sh -c 'echo x > /etc/opt/test.conf && cat /etc/opt/test.conf'", user="deploy")[1] == "x\n"
    )
    assert (
        run(rhel9, "mkdir /etc/opt/x", user="deploy")[2]
        == "mkdir: cannot create directory '/etc/opt/x': Permission denied\n"
    )


def test_if_for_and_while_run(rhel9: HostState) -> None:
    script = "for f in a b; do if [ $f = a ]; then echo A; else echo $f; fi; done; n=0; while [ $n -lt 2 ]; do n=$((n+1)); done; echo $n"
    assert run(rhel9, script)[1] == "A\nb\n2\n"


def test_set_e_stops_at_the_first_failure(rhel9: HostState) -> None:
    assert run(rhel9, "set -e; false || true; echo ok; false; echo never") == (1, "ok\n", "")


def test_command_v_prints_paths_and_fails_for_missing_commands() -> None:
    assert (
        run(make_state("rhel-9.4"), "command -v curl getenforce echo")[1]
        == "/usr/bin/curl\n/usr/sbin/getenforce\necho\n"
    )
    assert run(make_state("rhel-6.10"), "command -v cat")[1] == "/bin/cat\n"
    assert run(make_state("rhel-9.4"), "command -v nosuch")[0] == 1


def test_absolute_paths_run_installed_commands(rhel9: HostState) -> None:
    assert run(rhel9, "/usr/bin/echo hi; /bin/uname -s; /opt/x/y")[1:] == (
        "hi\nLinux\n",
        "bash: line 1: /opt/x/y: No such file or directory\n",
    )
