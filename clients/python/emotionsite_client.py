"""A small command-line client for the emotionsite REST API, using only the standard library.

    python clients/python/emotionsite_client.py photo.jpg voice.flac --url http://127.0.0.1:8000 \\
        --username alice --password ... [--wait 30] [--json]

The token comes from ``--token`` (or ``EMOTIONSITE_TOKEN``), else from ``--username`` and
``--password`` (or ``EMOTIONSITE_PASSWORD``, else a prompt). Each file is uploaded with
``?wait=N``; if the server answers 202 before the result is ready, the client polls the
analysis until it finishes or N seconds have passed. Exit status: 0 when every file was
analysed, 1 when any upload was refused or failed, 2 on usage or connection errors.
"""

from __future__ import annotations

import argparse
import getpass
import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
FINISHED = {"done", "failed"}


class ApiError(Exception):
    """An error answer from the API (``status``, ``code``) or a transport failure (status 0)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status, self.code, self.message = status, code, message


def encode_multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request carrying one file."""
    boundary = uuid.uuid4().hex
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{safe_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


class Client:
    """Calls to one emotionsite server. ``token`` may be set later by :meth:`login`."""

    def __init__(
        self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 120.0
    ) -> None:
        self.base = url.rstrip("/") + "/api/v1/"
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
                params: dict[str, Any] | None = None) -> tuple[int, Any]:  # fmt: skip
        """(status, decoded JSON or None) for one call; raises ApiError on 4xx/5xx or no answer."""
        url = urllib.parse.urljoin(self.base, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=body, method=method)
        req.add_header("Accept", "application/json")
        if content_type:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                error = json.loads(raw)["error"]
                raise ApiError(
                    exc.code, error.get("code", "error"), error.get("message", "")
                ) from None
            except (ValueError, KeyError, TypeError):
                raise ApiError(
                    exc.code,
                    "http_error",
                    raw[:200].decode("utf-8", "replace") or str(exc),
                ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ApiError(
                0,
                "connection_error",
                f"cannot reach {url}: {getattr(exc, 'reason', exc)}",
            ) from None

    def login(self, username: str, password: str) -> str:
        """Get (and keep) a token for these credentials."""
        body = urllib.parse.urlencode(
            {"username": username, "password": password}
        ).encode()
        _, data = self.request(
            "POST",
            "auth/token/",
            body=body,
            content_type="application/x-www-form-urlencoded",
        )
        self.token = data["token"]
        return self.token

    def revoke(self) -> None:
        """Revoke the current token (it stops working at once)."""
        self.request("DELETE", "auth/token/")
        self.token = None

    def get(self, analysis_id: int) -> dict[str, Any]:
        return self.request("GET", f"analyses/{int(analysis_id)}/")[1]

    def analyse(self, path: str | Path, wait: float = 30.0) -> dict[str, Any]:
        """Upload one file and return its analysis, finished unless ``wait`` seconds ran out."""
        path = Path(path)
        body, content_type = encode_multipart("file", path.name, path.read_bytes())
        deadline = time.monotonic() + wait
        _, analysis = self.request(
            "POST",
            "analyses/",
            body=body,
            content_type=content_type,
            params={"wait": wait},
        )
        delay = 0.25
        while analysis["status"] not in FINISHED and time.monotonic() < deadline:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)
            analysis = self.get(analysis["id"])
        return analysis


def summary(name: str, analysis: dict[str, Any]) -> str:
    """One human-readable line about an analysis."""
    status = analysis.get("status")
    if status == "failed":
        return f"{name}: failed: {analysis.get('error') or 'no reason given'}"
    if status != "done":
        return f"{name}: {status} (not finished yet: {analysis.get('url')})"
    result = analysis.get("result") or {}
    parts = []
    faces = result.get("faces")
    if faces is not None:
        parts.append(f"{len(faces)} face{'s' if len(faces) != 1 else ''}")
        parts += [
            f"{f['emotion']} {f['probabilities'][f['emotion']]:.2f} at {f['box']}"
            for f in faces[:10]
        ]
    voice = result.get("voice")
    if voice is not None:
        emotion = voice.get("emotion")
        if emotion:
            parts.append(f"voice: {emotion} {voice['probabilities'][emotion]:.2f}")
        else:
            parts.append("voice: no speech heard")
    return f"{name}: done, " + "; ".join(parts or ["nothing found"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotionsite_client.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="photos, recordings or videos",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("EMOTIONSITE_URL", DEFAULT_URL),
        help="server (default %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("EMOTIONSITE_TOKEN"),
        help="API token (or EMOTIONSITE_TOKEN)",
    )
    parser.add_argument("--username", default=os.environ.get("EMOTIONSITE_USERNAME"))
    parser.add_argument(
        "--password",
        default=os.environ.get("EMOTIONSITE_PASSWORD"),
        help="(or EMOTIONSITE_PASSWORD; else prompted)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for each result (default %(default)s)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the analyses as JSON instead of summaries",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = Client(args.url, token=args.token)
    try:
        if not client.token:
            if not args.username:
                print(
                    "error: give --token, or --username (and --password)",
                    file=sys.stderr,
                )
                return 2
            client.login(
                args.username,
                args.password or getpass.getpass(f"Password for {args.username}: "),
            )
    except ApiError as exc:
        print(f"error: cannot sign in: {exc}", file=sys.stderr)
        return 2
    results, code = [], 0
    for path in args.files:
        try:
            analysis = client.analyse(path, wait=args.wait)
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            code = 1
            continue
        except ApiError as exc:
            print(f"{path.name}: refused: {exc}", file=sys.stderr)
            if exc.status in (0, 401):
                return 2
            code = 1
            continue
        results.append(analysis)
        code = code or int(analysis["status"] != "done")
        if not args.json:
            print(summary(path.name, analysis))
    if args.json:
        print(json.dumps(results, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
