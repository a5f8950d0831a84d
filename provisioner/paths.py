"""Host paths built from names: each one is checked to lie inside its parent
before anything is created, mounted or removed there.

Names come from the server itself (a kernel id it generated, checked again by
``container_name``) or from listings of folders it owns; this is the second
line, so that a name that got past the first still cannot reach elsewhere.
"""

from __future__ import annotations

import uuid
from pathlib import Path

CONTAINER_PREFIX = "cr-"


def child(parent: Path, name: str) -> Path:
    """``parent / name`` for a single plain path component that stays in ``parent``
    once symlinks are resolved; ValueError otherwise."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"{name!r} is not a plain file name")
    path = parent / name
    if path.resolve().parent != parent.resolve():  # e.g. a symlink to another folder
        raise ValueError(f"{path} leads outside {parent}")
    return path


def container_name(kernel_id: str) -> str:
    """The sandbox's name for a kernel id, which names host folders and cgroups
    too: only the canonical form of a UUID is accepted, so no id a client chose
    can reach a path outside the provisioner's own folders."""
    try:
        canonical = str(uuid.UUID(kernel_id))
    except (TypeError, ValueError):
        canonical = None
    if canonical != kernel_id:
        raise ValueError(f"kernel id {kernel_id!r} is not a UUID")
    return f"{CONTAINER_PREFIX}{kernel_id}"


def is_container_name(name: str) -> bool:
    """Whether ``name`` is what ``container_name`` makes of some kernel id."""
    try:
        return name.startswith(CONTAINER_PREFIX) and container_name(name[len(CONTAINER_PREFIX) :]) == name
    except ValueError:
        return False
