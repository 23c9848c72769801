"""From an inventory host to the SSH target the session layer needs (credential decrypted in memory)."""

from __future__ import annotations

from hosts.choices import CredentialKind
from hosts.models import Host
from hosts.services import credential_secret
from hosts.ssh import Secret, Target


def target_for(host: Host) -> Target:
    """The SSH target of ``host``: address, user, decrypted credential and pinned host key."""
    credential = host.credential
    material = credential_secret(credential=credential)
    if credential.kind == CredentialKind.PRIVATE_KEY:
        secret = Secret(private_key=material["secret"], passphrase=material["passphrase"])
    elif credential.kind == CredentialKind.PASSWORD:
        secret = Secret(password=material["secret"])
    else:
        raise ValueError(f"credential {credential.name!r} has an unknown kind {credential.kind!r}")
    return Target(
        host_id=host.pk,
        address=host.address,
        port=host.port,
        username=host.ssh_user,
        secret=secret,
        host_key=host.host_key,
        use_sudo=host.use_sudo,
    )
