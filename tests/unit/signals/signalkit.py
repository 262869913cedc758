"""Test helpers for the rights-signals tests: generated media, a C2PA test signer, exiftool,
and a tiny loopback web server serving fixed routes (one origin per site)."""

from __future__ import annotations

import datetime
import io
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

EXIFTOOL = shutil.which("exiftool")


def noise_image(seed: int, size: int = 192) -> Image.Image:
    """A textured image pHash can tell apart from other seeds."""
    rng = np.random.default_rng(seed)
    small = (rng.random((24, 24, 3)) * 255).astype("uint8")
    return Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC)


def image_bytes(seed: int, fmt: str = "JPEG", **save: Any) -> bytes:
    buf = io.BytesIO()
    noise_image(seed).save(buf, fmt, **save)
    return buf.getvalue()


def audio_bytes(seed: int, fmt: str, seconds: float = 12.0) -> bytes:
    """Pink noise encoded by ffmpeg (mp3, flac, ogg, wav, m4a)."""
    codec = {"ogg": ["-c:a", "libvorbis"], "m4a": ["-c:a", "aac"]}.get(fmt, [])
    with tempfile.TemporaryDirectory() as tmp:  # a file, not a pipe: WAV and MP4 need seeking
        out = Path(tmp) / f"a.{fmt}"
        cmd = [
            "ffmpeg", "-loglevel", "error", "-f", "lavfi",
            "-i", f"anoisesrc=d={seconds}:c=pink:r=22050:a=0.5:seed={seed}",
            "-ac", "1", *codec, str(out),
        ]  # fmt: skip
        subprocess.run(cmd, capture_output=True, check=True)
        return out.read_bytes()


def exiftool(path: Path) -> dict[str, Any]:
    """Every tag exiftool (Debian's, not ours) reads, grouped by family 1 (`XMP-dc:Creator`)."""
    assert EXIFTOOL, "exiftool is not installed"
    out = subprocess.run(
        [EXIFTOOL, "-j", "-G1", "-u", "-charset", "utf8", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)[0]
    return result


# --- C2PA -----------------------------------------------------------------------------------


def c2pa_signer() -> Any:
    """A c2pa.Signer with a throwaway ES256 chain (CA -> signer) made for this test run."""
    import c2pa
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rightswatch tests"),
            ]
        )

    def usage(*, sign_certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs,
            crl_sign=sign_certs, encipher_only=False, decipher_only=False,
        )  # fmt: skip

    now = datetime.datetime.now(datetime.UTC)
    ca_key, ee_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("rightswatch test CA"))
        .issuer_name(name("rightswatch test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(sign_certs=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ee = (
        x509.CertificateBuilder()
        .subject_name(name("rightswatch test signer"))
        .issuer_name(ca.subject)
        .public_key(ee_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign_certs=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ee_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = ee.public_bytes(pem) + ca.public_bytes(pem)
    key = ee_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))


def c2pa_sign(data: bytes, signer: Any, mime: str = "image/jpeg") -> bytes:
    """The media with an embedded C2PA manifest ("created" action) signed by signer."""
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": "rightswatch-tests", "version": "1"}],
        "title": "test",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
                        }
                    ]
                },
            }
        ],
    }
    out = io.BytesIO()
    with c2pa.Builder(json.dumps(manifest)) as builder:
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


def tamper_pixels(signed_jpeg: bytes) -> bytes:
    """Flip a byte in the scan data (after the manifest): the content hash no longer matches."""
    t = bytearray(signed_jpeg)
    t[-200] ^= 0xFF
    return bytes(t)


# --- a loopback web server ------------------------------------------------------------------


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    drip_s: float = 0.0  # > 0: send the body one byte at a time, pausing this long


@dataclass
class Site:
    """One origin on 127.0.0.1: fixed routes, and the paths it was asked for."""

    routes: dict[str, Route]
    hits: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def html(body: str, head: str = "") -> Route:
    return Route(
        f"<!doctype html><html><head>{head}</head><body>{body}</body></html>".encode(),
        headers={"Content-Type": "text/html; charset=utf-8"},
    )


@contextmanager
def serve(site: Site) -> Iterator[Site]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.hits.append(self.path)
            route = site.routes.get(self.path.split("?", 1)[0])
            if route is None:
                route = Route(b"not found", 404, {"Content-Type": "text/plain"})
            self.send_response(route.status)
            for key, value in route.headers.items():
                self.send_header(key, value.replace("{port}", str(site.port)))
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            try:
                if not route.drip_s:
                    self.wfile.write(route.body)
                for i in range(len(route.body) if route.drip_s else 0):
                    self.wfile.write(route.body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(route.drip_s)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
