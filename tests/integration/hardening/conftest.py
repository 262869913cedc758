"""Fixtures for the fault tests: an S3 API server on loopback, and fresh bucket per test."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

S3_CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1:<free port>: real HTTP, real boto3 signing."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> dict[str, str]:
    for key, value in S3_CREDS.items():
        monkeypatch.setenv(key, value)
    return {**S3_CREDS, "RIGHTSWATCH_S3_ENDPOINT": s3_endpoint}


@pytest.fixture
def s3_bucket(s3_env: dict[str, str], s3_endpoint: str) -> str:
    name = f"rw-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def can_mount() -> bool:
    return (
        os.geteuid() == 0
        and subprocess.run(["mount", "--version"], capture_output=True, check=False).returncode == 0
    )


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Any]:
    """mount(kind, path, *options): a real filesystem (tiny tmpfs, read-only bind) for a test."""
    done: list[Path] = []

    def mount(kind: str, path: Path, size: str = "64k") -> Path:
        if not can_mount():
            pytest.skip("needs root to mount a tmpfs / read-only bind")
        if kind == "tmpfs":
            path.mkdir(parents=True, exist_ok=True)
            cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
        else:
            cmd = ["mount", "-o", "bind,ro", str(path), str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
        done.append(path)
        return path

    yield mount
    for path in reversed(done):
        subprocess.run(["umount", "-l", str(path)], check=False)
