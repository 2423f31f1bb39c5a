"""The exact workflow file a run used, found again by the hash the run log kept.

The run log stores the SHA-256 of the workflow file's bytes, not the bytes. This looks for them in
the two places they usually still are: the file itself (if unchanged since the run) and the git
history of that file (a team edits workflows in git). A version is shown only when its hash matches,
so a file edited since the run is never passed off as the one that ran.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_COMMITS = 200  # how far back in a file's history to look
GIT_TIMEOUT = 10.0
MAX_BYTES = 1 << 20  # a workflow file larger than this is not shown


@dataclass(frozen=True)
class WorkflowSource:
    sha256: str
    content: str | None
    where: str  # where the content came from, or why there is none

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "content": self.content, "where": self.where}


NOT_KEPT = ("the run log keeps the file's SHA-256, not its content, and no file or git version "
            "with this hash was found")


def find_source(path: str | None, sha256: str | None, *, cwd: Path | None = None) -> WorkflowSource:
    sha = (sha256 or "").lower()
    if not path or not sha:
        return WorkflowSource(sha, None, "the run log has no hash for this run's workflow file")
    file = Path(path)
    if not file.is_absolute():
        file = (cwd or Path.cwd()) / file
    content = _read_if(file, sha)
    if content is not None:
        return WorkflowSource(sha, content, f"{file} (unchanged since the run)")
    found = _from_git(file, sha)
    if found is not None:
        commit, content = found
        return WorkflowSource(sha, content, f"git commit {commit[:12]} of {file.name}")
    return WorkflowSource(sha, None, NOT_KEPT)


def _decode(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _read_if(file: Path, sha: str) -> str | None:
    try:
        if not file.is_file() or file.stat().st_size > MAX_BYTES:
            return None
        data = file.read_bytes()
    except OSError:
        return None
    return _decode(data) if hashlib.sha256(data).hexdigest() == sha else None


def _git(folder: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    # Only plumbing that reads objects (rev-parse, rev-list, cat-file): nothing a repository's own
    # config can turn into a command (hooks, fsmonitor, pager, signature checks, textconv).
    command = ["git", "-C", str(folder), "--no-pager", "-c", "core.fsmonitor=false",
               "--no-optional-locks", *args]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=GIT_TIMEOUT, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _from_git(file: Path, sha: str) -> tuple[str, str] | None:
    folder = file.parent
    while not folder.is_dir():
        if folder.parent == folder:
            return None
        folder = folder.parent
    top = _git(folder, "rev-parse", "--show-toplevel")
    if not top:
        return None
    root = Path(top.decode().strip())
    try:
        rel = file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    log = _git(root, "rev-list", f"--max-count={GIT_COMMITS}", "HEAD", "--", rel)  # plumbing: no signatures, no pager
    if not log:
        return None
    commits = log.decode().split()
    batch = _git(root, "cat-file", "--batch", stdin="".join(f"{c}:{rel}\n" for c in commits).encode())
    if batch is None:
        return None
    for commit, blob in zip(commits, _blobs(batch)):
        if blob is not None and len(blob) <= MAX_BYTES and hashlib.sha256(blob).hexdigest() == sha:
            text = _decode(blob)
            if text is not None:
                return commit, text
    return None


def _blobs(batch: bytes):
    """Split ``git cat-file --batch`` output: a header line, then that many bytes and a newline."""
    pos = 0
    while pos < len(batch):
        end = batch.index(b"\n", pos)
        header = batch[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[2].isdigit():
            size = int(header[2])
            yield batch[pos:pos + size]
            pos += size + 1
        else:  # "<name> missing": the file did not exist in that commit
            yield None
