"""Cold starts by checkpoint/restore: one zygote image per configuration, restored for each kernel.

The zygote (``coderemote_kernel.zygote`` in the sandbox) imports what every
kernel imports and waits for its connection file; it is started once in a
sandbox like a kernel's, checkpointed with ``runsc checkpoint`` and removed.
A new kernel is then ``runsc restore`` of that image into the
kernel's own bundle: its own connection folder (which already holds its own
connection file and key), cgroup and limits. The image is kept under
``{zygote_dir}/{key}``, where the key covers everything the image
depends on (runsc and its platform, the runtime, the sandbox package, the
bundle's settings and environment): a change builds a new image, and until
it is built kernels start plainly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from kernel_images import SANDBOX_PACKAGE_DIR
from provisioner import mounts, paths, reaper, subreaper
from provisioner.bundle import SandboxSpec, write_bundle
from provisioner.cgroup import MemoryCgroup, group_for
from provisioner.runsc import LogTail, Runsc, runsc_version

ZYGOTE_ARGS = ["-m", "coderemote_kernel.zygote"]
READY_MARKER = "zygote-ready"  # in the connection folder: the zygote may be checkpointed
RESTORED_MARKER = "zygote-restored"  # in a kernel's connection folder: its restore runs
CHECKPOINT_TIMEOUT = 120.0
MAX_IMAGES = 3  # images kept (one per configuration in use)
_building: set[str] = set()  # keys being built by this process
_lock = threading.Lock()


def image_key(runsc: Runsc, spec: SandboxSpec, runtime_path: Path) -> str:
    """What the image depends on; the per-kernel parts of the spec (connection folder, cgroup) are left out."""
    settings = asdict(spec)
    settings.pop("connection_dir", None)
    settings.pop("cgroup", None)
    package = sorted(
        (str(p.relative_to(SANDBOX_PACKAGE_DIR)), p.stat().st_mtime_ns) for p in Path(SANDBOX_PACKAGE_DIR).rglob("*.py")
    )
    # A package added with `coderemote runtime install` changes site-packages: a new image imports it.
    site_packages = sorted(runtime_path.glob("lib/python*/site-packages"))
    runtime = [(str(runtime_path), _mtime(runtime_path / "pyvenv.cfg"), *[_mtime(p) for p in site_packages])]
    payload = json.dumps(
        [runsc_version(runsc.executable), runsc.platform, settings, package, runtime], sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


class ZygoteImage:
    """The checkpoint image for one key, complete once ``ready``."""

    def __init__(self, root: Path, key: str) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root = root
        self.key = key
        self.dir = paths.child(root, key)
        self.image = self.dir / "image"
        self.complete = self.dir / "complete"

    @property
    def ready(self) -> bool:
        return self.complete.exists()

    def build_in_background(self, build: Any, log: Any) -> None:
        """Build it in a thread of its own (once per process and key); kernels start plainly meanwhile."""
        with _lock:
            if self.key in _building or self.ready:
                return
            _building.add(self.key)

        def run() -> None:
            try:
                build(self)
            except Exception as e:  # the fallback is a plain start: say why, keep serving
                log.warning("Could not build the zygote image %s (kernels start plainly): %s", self.key, e)
            finally:
                with _lock:
                    _building.discard(self.key)

        threading.Thread(target=run, daemon=True, name=f"zygote-{self.key[:8]}").start()


def build(
    image: ZygoteImage, runsc: Runsc, state_dir: Path, spec_for: Any, memory_limit: int, uid: int, log: Any
) -> None:
    """Start a zygote sandbox, wait for it to be ready, checkpoint it into ``image``, remove it.

    ``spec_for(connection_dir, cgroup)`` builds the zygote sandbox's spec, as a kernel's is built.
    """
    image.dir.mkdir(mode=0o700, exist_ok=True)
    try:
        lock = FileLock(str(image.dir / "lock"), timeout=0)
        lock.acquire()
    except Timeout:
        return  # another server builds it
    started = time.monotonic()
    container = paths.container_name(str(uuid.uuid4()))  # named like a kernel's: a reaper removes it if we die
    kernel_dir = paths.child(state_dir / "kernels", container)
    connection_dir = kernel_dir / "conn"
    cgroup = MemoryCgroup(container, group_for(state_dir))
    process: subprocess.Popen[bytes] | None = None
    try:
        if image.ready:
            return
        connection_dir.mkdir(parents=True)
        kernel_dir.chmod(0o700)
        reaper.write_owner(kernel_dir, role="zygote")
        mounts.mount_tmpfs(connection_dir, 256 * 1024, uid)
        spec = spec_for(connection_dir, cgroup.cgroups_path)
        write_bundle(kernel_dir, state_dir / "rootfs", spec)
        cgroup.create(memory_limit)
        process = runsc.start(container, kernel_dir)
        output = LogTail(process.stdout)
        deadline = time.monotonic() + CHECKPOINT_TIMEOUT
        while not (connection_dir / READY_MARKER).exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the zygote did not become ready: {output.text()[-800:]}")
            time.sleep(0.05)
        partial = image.dir / "image.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(mode=0o700)
        # Uncompressed: a restore reads it at memory speed (it is a few tens of MB), which is the point.
        result = runsc.run_sync(
            "checkpoint", "--compression=none", "--exclude-committed-zero-pages", f"--image-path={partial}", container,
            timeout=CHECKPOINT_TIMEOUT,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"runsc checkpoint failed: {(result.stdout + result.stderr).strip()[-800:]}")
        process.wait(timeout=30)
        shutil.rmtree(image.image, ignore_errors=True)
        partial.rename(image.image)
        image.complete.write_text(json.dumps({"built_in_s": round(time.monotonic() - started, 2)}))
        log.info("Zygote image %s built in %.1f s", image.key, time.monotonic() - started)
        prune(image.root, keep=image.key)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
        runsc.destroy_sync(container)
        cgroup.remove()
        reaper.remove_kernel_dir(kernel_dir)
        lock.release()


def restore_command(runsc: Runsc, image: ZygoteImage, bundle: Path, container: str) -> list[str]:
    """``runsc restore`` in the foreground, under ``provisioner.subreaper``: it lives as long as the
    sandbox, like ``runsc run``, and the sandbox's gofer is reaped as soon as it exits."""
    restore = runsc.command("restore", f"--image-path={image.image}", f"--bundle={bundle}", container)
    # By its file, isolated and without site: it needs only the standard library, and
    # importing the provisioner package (jupyter_client, traitlets) would delay every restore.
    return [sys.executable, "-I", "-S", subreaper.__file__, *restore]


def prune(root: Path, keep: str, max_images: int = 0) -> None:
    """Remove all but the newest ``MAX_IMAGES`` images (another configuration's, an older runtime's)."""
    limit = max_images or MAX_IMAGES
    done = [d for d in root.iterdir() if d.is_dir() and not d.is_symlink() and (d / "complete").exists()]
    done.sort(key=lambda d: (d.name == keep, (d / "complete").stat().st_mtime), reverse=True)
    for entry in done[limit:]:
        try:
            with FileLock(str(entry / "lock"), timeout=0):
                shutil.rmtree(entry, ignore_errors=True)
        except Timeout:
            continue  # being built, or read by a restore's builder
