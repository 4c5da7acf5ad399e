"""A real S3 server for the tests: moto's standalone server (``python -m moto.server``, from
moto[server]) in a subprocess on a free 127.0.0.1 port, spoken to over HTTP by boto3, exactly as
a MinIO or AWS endpoint would be. Nothing is mocked in the test process.

``S3Server`` starts, stops and restarts it; ``bucket()`` makes a fresh bucket and returns its
MEDIA_STORAGE_URL; ``keys()`` lists what a bucket holds (the "nothing orphaned" checks).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ACCESS_KEY, SECRET_KEY = "testing-key", "testing-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir) / f"moto-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.up():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (it keeps its buckets in memory: they are gone after a restart)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
        )  # fmt: skip

    def bucket(self, name: str | None = None) -> str:
        """Create a fresh bucket; returns the MEDIA_STORAGE_URL that names it."""
        name = name or f"media-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return self.url(name)

    def url(self, bucket: str) -> str:
        return f"s3+http://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:{self.port}/{bucket}?region=us-east-1"

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def get(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def bucket_of(url: str) -> str:
    return url.split("?", 1)[0].rsplit("/", 1)[-1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One moto S3 server for the session; each test makes its own bucket (``bucket()``)."""
    server = S3Server(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()
