"""Every simulated command, registered by importing its module (see ``hosts/sim/registry.py``).

Supported: the shell builtins (echo, printf, test/[, cd, pwd, export, set, exit, exec, command, type,
read, eval, source, kill) and sh/bash -c, sudo, timeout, env, nohup, nice, sleep; text tools (cat,
head, tail, grep/egrep/fgrep, wc, sort, uniq, cut, tr, tee, sha256sum/sha1sum/md5sum, date); file
tools (mkdir, chmod, chown, mv, rm, cp, touch, ln, readlink, ls, stat); system tools (ps, df, free,
uname, nproc, hostname, id, whoami, uptime, getenforce, systemctl or service, crontab, which);
curl; packages (rpm or dpkg, yum, dnf, yum-config-manager); python for the onboarding script; and
mdatp once the agent is installed. A new module of handlers is added to the import list below.
"""

from __future__ import annotations

from hosts.sim import cmd_admin, cmd_files, cmd_mdatp, cmd_net, cmd_pkg, cmd_ps, cmd_python, cmd_shell, cmd_text
from hosts.sim.registry import REGISTRY, CommandSpec, command

MODULES = (cmd_shell, cmd_text, cmd_files, cmd_ps, cmd_admin, cmd_net, cmd_pkg, cmd_python, cmd_mdatp)

__all__ = ["MODULES", "REGISTRY", "CommandSpec", "command"]
