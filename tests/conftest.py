"""Shared test setup: hermetic environment and a guard against leaving the machine.

Every test runs with its own run-log database, no OpenAI credentials from the developer's shell,
and a socket guard that fails any connection to an address outside loopback (so no test can
reach a real API by accident).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `support`, the shared helpers

from support.paths import RECORDED  # noqa: E402


class NetworkGuardError(RuntimeError):
    pass


def _is_loopback(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkGuardError(f"test tried to reach {address!r}: tests may only use 127.0.0.1 / ::1")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise NetworkGuardError(f"test tried to reach {address!r}: tests may only use 127.0.0.1 / ::1")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch, tmp_path):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_LOG", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWRUN_LOG_DB", str(tmp_path / "runs.sqlite3"))
    yield


@pytest.fixture
def recorded_dir() -> Path:
    return RECORDED
