"""Snippet-database folders for `jupyter coderemote` processes started by tests.

A test server keeps its embedded PostgreSQL in a folder of its own, never in
the user's data dir. The folder lies outside pytest's tmp tree because the
embedded server runs as a user of its own, and pytest makes its tree private
again whenever a run starts.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from snippets.postgres import EmbeddedPostgres


def private_data_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="coderemote-data-"))
    path.chmod(0o755)
    return path


def release_data_dir(path: Path) -> None:
    """Stop the embedded PostgreSQL a stopped (or killed) server left running, then remove the folder."""
    pgdata = path / "postgres"
    if (pgdata / "postmaster.pid").exists():
        # Joining and letting go as its last user stops it (dead users are forgotten).
        server = EmbeddedPostgres(pgdata)
        server.start()
        server.stop()
    shutil.rmtree(path, ignore_errors=True)
