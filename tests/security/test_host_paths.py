"""Names that reach host paths: the provisioner's second line behind the
kernel-id check. Planted folders, symlinks and foreign names in a state
folder of the test's own, reaped with the real runsc; nothing outside it may
be touched."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner import paths, reaper
from provisioner.cgroup import MemoryCgroup
from provisioner.gvisor import GVisorProvisioner
from provisioner.runsc import Runsc


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "victim"
    path.mkdir()
    (path / "precious.txt").write_text("keep me")
    yield path
    assert (path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "/etc", "a\0b"])
def test_a_name_is_one_plain_path_component(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        paths.child(tmp_path, name)


def test_a_symlink_out_of_the_parent_is_refused(tmp_path: Path, victim: Path) -> None:
    parent = tmp_path / "kernels"
    parent.mkdir()
    (parent / "link").symlink_to(victim)
    with pytest.raises(ValueError, match="leads outside"):
        paths.child(parent, "link")
    assert paths.child(parent, "new") == parent / "new"


@pytest.mark.parametrize(
    "kernel_id",
    ["x/../../tmp", str(uuid.uuid4()).upper(), "{" + str(uuid.uuid4()) + "}", str(uuid.uuid4()) + "/..", "cr-1"],
)
def test_only_canonical_uuids_name_sandboxes(kernel_id: str) -> None:
    with pytest.raises(ValueError):
        paths.container_name(kernel_id)
    assert not paths.is_container_name(f"cr-{kernel_id}")


def test_cgroup_names_stay_in_their_group() -> None:
    with pytest.raises(ValueError):
        MemoryCgroup("../../escape", "coderemote-test")


async def test_saved_provisioner_info_cannot_name_another_folder(tmp_path: Path) -> None:
    provisioner = GVisorProvisioner(state_dir=str(tmp_path))
    with pytest.raises(ValueError, match="not the name"):
        await provisioner.load_provisioner_info({"container_id": "../../victim"})


def test_the_reaper_touches_only_folders_it_made(tmp_path: Path, victim: Path) -> None:
    """A symlink under a sandbox's name, a folder with a foreign name and a
    stale folder of our own: only the last goes."""
    runsc = Runsc.find("runsc", tmp_path / "runsc", "ptrace")
    (tmp_path / "runsc").mkdir()
    kernels = tmp_path / "kernels"
    kernels.mkdir()
    planted = kernels / paths.container_name(str(uuid.uuid4()))
    planted.symlink_to(victim)
    foreign = kernels / "someone-elses"
    foreign.mkdir()
    stale = kernels / paths.container_name(str(uuid.uuid4()))
    stale.mkdir()
    reaped = reaper.reap(runsc)
    assert reaped == [stale.name]
    assert not stale.exists() and foreign.is_dir() and planted.is_symlink()
    with pytest.raises(ValueError, match="symlink"):
        reaper.remove_kernel_dir(planted)
