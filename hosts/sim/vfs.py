"""The virtual filesystem of one simulated host: files, directories, owners and modes.

Plain files live in a dict; trees whose content is computed (``/proc``) are mounted as
providers. Permission checks follow POSIX owner/group/other bits, root bypasses them, and a
non-root user needs search permission on every directory on the way.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hosts.sim.state import Cred

_REASONS = {
    "ENOENT": "No such file or directory",
    "EACCES": "Permission denied",
    "EISDIR": "Is a directory",
    "ENOTDIR": "Not a directory",
    "EEXIST": "File exists",
    "EPERM": "Operation not permitted",
    "ENOTEMPTY": "Directory not empty",
    "EINVAL": "Invalid argument",
    "EBUSY": "Device or resource busy",
}
# dash prints its own short texts for redirection failures.
_DASH = {"ENOENT": "No such file", "EACCES": "Permission denied", "EISDIR": "Is a directory"}


class FSError(Exception):
    """A failed filesystem call, with the errno name and its message."""

    def __init__(self, code: str, path: str) -> None:
        super().__init__(f"{path}: {_REASONS[code]}")
        self.code = code
        self.path = path
        self.reason = _REASONS[code]
        self.dash_reason = _DASH.get(code, self.reason)


@dataclass(slots=True)
class Node:
    """A file, directory or symbolic link; ``data`` may be computed on each read."""

    kind: str  # f | d | l
    mode: int
    uid: int = 0
    gid: int = 0
    data: str | Callable[[], str] = ""
    mtime: float = 0.0

    def text(self) -> str:
        return self.data() if callable(self.data) else self.data


class Provider(Protocol):
    """A computed tree mounted at a prefix (``/proc``)."""

    def lookup(self, path: str) -> Node | None: ...

    def listdir(self, path: str) -> list[str] | None: ...


def normpath(cwd: str, path: str) -> str:
    """Absolute, normalised path (no symlink resolution)."""
    joined = path if path.startswith("/") else posixpath.join(cwd or "/", path)
    norm = posixpath.normpath(joined)
    return "/" + norm.lstrip("/") if norm != "/" else "/"


class VFS:
    """One host's files."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.nodes: dict[str, Node] = {"/": Node("d", 0o555)}
        self.children: dict[str, set[str]] = {"/": set()}
        self.providers: dict[str, Provider] = {}
        self.writable: set[str] = set()
        # Called with the path after every write (the agent's real-time protection watches closes).
        self.on_write: Callable[[str], None] | None = None

    # building -------------------------------------------------------------------------------
    def add_dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        parent = posixpath.dirname(path)
        if parent not in self.nodes:
            self.add_dir(parent)
        if path not in self.nodes:
            self.nodes[path] = Node("d", mode, uid, gid, mtime=self.now())
            self.children[path] = set()
            self.children[parent].add(posixpath.basename(path))
        else:
            node = self.nodes[path]
            node.mode, node.uid, node.gid = mode, uid, gid

    def add_file(
        self, path: str, data: str | Callable[[], str], mode: int = 0o644, uid: int = 0, gid: int = 0, kind: str = "f"
    ) -> None:
        parent = posixpath.dirname(path)
        if parent not in self.nodes:
            self.add_dir(parent)
        self.nodes[path] = Node(kind, mode, uid, gid, data, self.now())
        self.children[parent].add(posixpath.basename(path))

    def mount(self, prefix: str, provider: Provider, *, writable: bool = False) -> None:
        """Serve computed entries under ``prefix``; plain files written there win (if ``writable``)."""
        self.providers[prefix] = provider
        if writable:
            self.writable.add(prefix)
        self.add_dir(prefix, 0o755 if writable else 0o555)

    # lookups --------------------------------------------------------------------------------
    def _provider(self, path: str) -> Provider | None:
        for prefix, provider in self.providers.items():
            if path == prefix or path.startswith(prefix + "/"):
                return provider
        return None

    def lookup(self, path: str) -> Node | None:
        node = self.nodes.get(path)
        if node is not None:
            return node
        provider = self._provider(path)
        return provider.lookup(path) if provider is not None else None

    def resolve(self, path: str, depth: int = 0) -> str:
        """Follow a symbolic link at the last component (absolute targets or relative to its dir)."""
        return self._resolved(path, depth)[0]

    def _resolved(self, path: str, depth: int = 0) -> tuple[str, Node | None]:
        """:meth:`resolve` and the node found there, so a stat looks a path up once, not twice."""
        node = self.lookup(path)
        if node is not None and node.kind == "l" and depth < 8:
            target = node.text()
            return self._resolved(normpath(posixpath.dirname(path), target), depth + 1)
        return path, node

    def stat(self, path: str, cred: Cred | None = None, *, follow: bool = True) -> Node:
        if cred is not None:
            self._search(path, cred)
        node = self._resolved(path)[1] if follow else self.lookup(path)
        if node is None:
            parent = posixpath.dirname(path)
            parent_node = self.lookup(parent)
            if parent_node is not None and parent_node.kind == "f":
                raise FSError("ENOTDIR", path)
            raise FSError("ENOENT", path)
        return node

    def exists(self, path: str) -> bool:
        return self._resolved(path)[1] is not None

    def _search(self, path: str, cred: Cred) -> None:
        """Search (x) permission on every ancestor directory."""
        if cred.uid == 0:
            return
        current = ""
        for part in path.strip("/").split("/")[:-1]:
            current += "/" + part
            node = self.lookup(current)
            if node is None:
                raise FSError("ENOENT", path)
            if node.kind == "d" and not allowed(node, cred, 1):
                raise FSError("EACCES", path)

    def read(self, path: str, cred: Cred) -> str:
        node = self.stat(path, cred)
        if node.kind == "d":
            raise FSError("EISDIR", path)
        if not allowed(node, cred, 4):
            raise FSError("EACCES", path)
        return node.text()

    def listdir(self, path: str, cred: Cred) -> list[str]:
        node = self.stat(path, cred)
        if node.kind != "d":
            raise FSError("ENOTDIR", path)
        if not allowed(node, cred, 4):
            raise FSError("EACCES", path)
        real = self.resolve(path)
        provider = self._provider(real)
        if provider is not None:
            names = provider.listdir(real) or []
            if real in self.children:
                names = sorted(set(names) | self.children[real])
            return names
        return sorted(self.children.get(real, ()))

    # changes --------------------------------------------------------------------------------
    def _writable_parent(self, path: str, cred: Cred) -> str:
        parent = posixpath.dirname(path)
        parent_node = self.stat(parent, cred)
        if parent_node.kind != "d":
            raise FSError("ENOTDIR", path)
        read_only = self._provider(parent) is not None and parent not in self.writable
        if read_only or not allowed(parent_node, cred, 2):
            raise FSError("EACCES", path)
        return parent

    def write(
        self, path: str, data: str, cred: Cred, *, append: bool = False, mode: int = 0o644, umask: int = 0o022
    ) -> None:
        path = self.resolve(path)
        node = self.lookup(path)
        if node is None:
            self._search(path, cred)
            self._writable_parent(path, cred)
            self.add_file(path, data, mode & ~umask, cred.uid, cred.gid)
        else:
            self._search(path, cred)
            if node.kind == "d":
                raise FSError("EISDIR", path)
            if callable(node.data) or not allowed(node, cred, 2):
                raise FSError("EACCES", path)
            node.data = (node.text() + data) if append else data
            node.mtime = self.now()
        if self.on_write is not None:
            self.on_write(path)

    def mkdir(self, path: str, cred: Cred, *, parents: bool = False, mode: int = 0o755) -> None:
        if self.lookup(path) is not None:
            if parents and self.lookup(path).kind == "d":  # type: ignore[union-attr]
                return
            raise FSError("EEXIST", path)
        parent = posixpath.dirname(path)
        if parents and self.lookup(parent) is None:
            self.mkdir(parent, cred, parents=True, mode=mode)
        self._search(path, cred)
        self._writable_parent(path, cred)
        self.add_dir(path, mode & ~0o022, cred.uid, cred.gid)

    def remove(self, path: str, cred: Cred, *, recursive: bool = False, directory: bool = False) -> None:
        node = self.stat(path, cred, follow=False)
        parent = self._writable_parent(path, cred)
        if path not in self.nodes:  # computed entries (/proc, /usr/bin) cannot be removed
            raise FSError("EPERM" if cred.uid == 0 else "EACCES", path)
        if node.kind == "d":
            if not (recursive or directory):
                raise FSError("EISDIR", path)
            if self.children.get(path) and not recursive:
                raise FSError("ENOTEMPTY", path)
            for child in list(self.children.get(path, ())):
                self.remove(posixpath.join(path, child), cred, recursive=True)
            self.children.pop(path, None)
        del self.nodes[path]
        self.children[parent].discard(posixpath.basename(path))

    def rename(self, src: str, dst: str, cred: Cred) -> None:
        node = self.stat(src, cred, follow=False)
        self._writable_parent(src, cred)
        if src not in self.nodes:
            raise FSError("EPERM" if cred.uid == 0 else "EACCES", src)
        target = self.lookup(dst)
        if target is not None and target.kind == "d":
            dst = posixpath.join(dst, posixpath.basename(src))
        self._search(dst, cred)
        self._writable_parent(dst, cred)
        if node.kind == "d":
            moved = {p: n for p, n in self.nodes.items() if p == src or p.startswith(src + "/")}
            for old, each in moved.items():
                del self.nodes[old]
                self.nodes[dst + old[len(src) :]] = each
            kids = {p: c for p, c in self.children.items() if p == src or p.startswith(src + "/")}
            for old, each in kids.items():
                del self.children[old]
                self.children[dst + old[len(src) :]] = each
        else:
            del self.nodes[src]
            self.nodes[dst] = node
        self.children[posixpath.dirname(src)].discard(posixpath.basename(src))
        self.children[posixpath.dirname(dst)].add(posixpath.basename(dst))
        node.mtime = self.now()

    def glob(self, pattern: str, cwd: str, cred: Cred) -> list[str]:
        """Paths matching a shell pattern (``/proc/[0-9]*/fdinfo/*``), sorted; unreadable dirs skipped."""
        absolute = pattern.startswith("/")
        parts = [part for part in pattern.split("/") if part]
        bases = ["/"] if absolute else [cwd]
        for part in parts:
            found: list[str] = []
            for base in bases:
                if not any(c in part for c in "*?["):
                    candidate = posixpath.join(base, part)
                    if self.lookup(self.resolve(candidate)) is not None:
                        found.append(candidate)
                    continue
                try:
                    names = self.listdir(base, cred)
                except FSError:
                    continue
                found.extend(posixpath.join(base, name) for name in names if glob_match(name, part))
            bases = found
            if not bases:
                return []
        if not absolute:
            prefix = cwd.rstrip("/") + "/"
            bases = [b[len(prefix) :] if b.startswith(prefix) else b for b in bases]
        return sorted(bases)


def glob_match(name: str, pattern: str) -> bool:
    """Shell pattern match of one path component (hidden names need an explicit dot)."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def allowed(node: Node, cred: Cred, bit: int) -> bool:
    """POSIX permission check of one node for read (4), write (2) or execute/search (1)."""
    if cred.uid == 0:
        return bit != 1 or node.kind == "d" or bool(node.mode & 0o111)
    if cred.uid == node.uid:
        return bool(node.mode & (bit << 6))
    if node.gid in cred.groups:
        return bool(node.mode & (bit << 3))
    return bool(node.mode & bit)


def mode_string(node: Node) -> str:
    """``-rw-r--r--`` for ``ls -l`` and ``stat -c %A``."""
    kind = {"f": "-", "d": "d", "l": "l"}[node.kind]
    bits = ""
    for shift in (6, 3, 0):
        value = (node.mode >> shift) & 7
        bits += ("r" if value & 4 else "-") + ("w" if value & 2 else "-") + ("x" if value & 1 else "-")
    if node.mode & 0o1000:
        bits = bits[:-1] + ("t" if bits[-1] == "x" else "T")
    return kind + bits
