"""Delivering a file atomically: written to a temporary name beside the target, then renamed.

The content travels on standard input, never in the command line (so secrets such as the
onboarding package stay out of process lists, logs and the stored command), and the command
prints only the file's SHA-256 so the step can check what landed.
"""

from __future__ import annotations

import hashlib
import posixpath

from deployments.steps.commands import q


def atomic_write(path: str, *, mode: str, owner: str = "root:root") -> str:
    """Command writing stdin to ``path`` atomically with the given mode and owner, then its sha256."""
    directory = posixpath.dirname(path)
    tmp = posixpath.join(directory, f".{posixpath.basename(path)}.mdefleet-tmp")
    return (
        f"mkdir -p {q(directory)} && umask 077 && cat > {q(tmp)} && chown {q(owner)} {q(tmp)} && "
        f"chmod {q(mode)} {q(tmp)} && mv -f {q(tmp)} {q(path)} && sha256sum {q(path)}"
    )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def landed(stdout: str, expected: str) -> bool:
    """True when sha256sum's output names the expected digest."""
    return any(line.split()[:1] == [expected] for line in stdout.splitlines())
