"""A real RFC 3161 time-stamping authority on loopback: `openssl ts -reply` behind a tiny HTTP
server, with a test CA and a TSA certificate (EKU timeStamping, critical unless told otherwise)."""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _tsa_cert(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    tsa_key: ec.EllipticCurvePrivateKey,
    *,
    critical: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name("rightswatch test TSA"))
        .issuer_name(ca.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=critical
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def make_pki(base: Path, *, critical_eku: bool = True) -> x509.Certificate:
    """CA + TSA certificate and key under base; returns the CA (the trust anchor)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("rightswatch test root CA for the loopback time-stamping tests"))
        .issuer_name(_name("rightswatch test root CA for the loopback time-stamping tests"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    tsa = _tsa_cert(ca, ca_key, tsa_key, critical=critical_eku)
    (base / "ca.key").write_bytes(_key_pem(ca_key))
    (base / "tsa.pem").write_bytes(_pem(tsa))
    (base / "tsa.key").write_bytes(_key_pem(tsa_key))
    (base / "chain.pem").write_bytes(_pem(tsa) + _pem(ca))
    (base / "ca.pem").write_bytes(_pem(ca))
    (base / "serial").write_text("01\n")
    (base / "tsa.cnf").write_text(f"""
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {base}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")
    return ca


def reply(base: Path, request: bytes, *extra: str) -> bytes:
    """openssl ts -reply for a DER request (extra: e.g. '-tspolicy', '1.2.3.4.5')."""
    q = base / f"q-{threading.get_ident()}.tsq"
    r = base / f"r-{threading.get_ident()}.tsr"
    q.write_bytes(request)
    subprocess.run(
        [
            "openssl",
            "ts",
            "-reply",
            "-config",
            str(base / "tsa.cnf"),
            "-queryfile",
            str(q),
            "-out",
            str(r),
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    return r.read_bytes()


def _pki_with_sorted_certs(base: Path, *, critical_eku: bool) -> x509.Certificate:
    """openssl does not sort the token's certificate SET (DER wants it sorted, and the strict
    rfc3161-client parser checks): make key pairs until its order happens to be the sorted one."""
    from rfc3161_client import TimestampRequestBuilder, decode_timestamp_response

    probe = bytes(
        TimestampRequestBuilder().data(b"probe").cert_request(cert_request=True).build().as_bytes()
    )
    for _ in range(40):
        ca = make_pki(base, critical_eku=critical_eku)
        if not critical_eku:
            return ca  # openssl refuses to sign with it: nothing to probe
        try:
            decode_timestamp_response(reply(base, probe))
        except ValueError:
            continue
        return ca
    raise RuntimeError("could not make a TSA whose certificate set parses")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def resign_token(base: Path, response: bytes, *, critical_eku: bool = False) -> bytes:
    """The same TSTInfo (time, imprint, nonce, policy) signed again with the TSA's key under a
    fresh certificate from the same CA (EKU critical or not) with `openssl cms`, wrapped as a
    granted TimeStampResp. New certificates until the token's certificate SET parses."""
    from rfc3161_client import decode_timestamp_response

    tag = threading.get_ident()
    src, tok, tst, out, pem = (
        base / f"{n}-{tag}" for n in ("resp.der", "tok.der", "tst.der", "new.der", "cert.pem")
    )
    src.write_bytes(response)
    _openssl("ts", "-reply", "-in", str(src), "-token_out", "-out", str(tok))
    _openssl("cms", "-verify", "-noverify", "-inform", "DER", "-in", str(tok), "-binary",
             "-out", str(tst))  # fmt: skip
    ca = x509.load_pem_x509_certificate((base / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((base / "ca.key").read_bytes(), None)
    tsa_key = serialization.load_pem_private_key((base / "tsa.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    assert isinstance(tsa_key, ec.EllipticCurvePrivateKey)
    for _ in range(40):
        pem.write_bytes(_pem(_tsa_cert(ca, ca_key, tsa_key, critical=critical_eku)))
        _openssl("cms", "-sign", "-binary", "-nodetach", "-in", str(tst),
                 "-econtent_type", "1.2.840.113549.1.9.16.1.4", "-signer", str(pem),
                 "-inkey", str(base / "tsa.key"), "-certfile", str(base / "ca.pem"),
                 "-md", "sha256", "-nosmimecap", "-outform", "DER", "-out", str(out))  # fmt: skip
        body = bytes.fromhex("3003020100") + out.read_bytes()  # PKIStatusInfo{granted}, token
        token = b"\x30" + _der_length(len(body)) + body
        try:
            decode_timestamp_response(token)
        except ValueError:
            continue
        return token
    raise RuntimeError("could not make a token whose certificate set parses")


class TSA:
    def __init__(self, base: Path, ca: x509.Certificate, url: str) -> None:
        self.base, self.ca, self.url = base, ca, url
        self.requests = 0


@contextmanager
def loopback_tsa(*, critical_eku: bool = True) -> Iterator[TSA]:
    with tempfile.TemporaryDirectory(prefix="rw-tsa-") as tmp:
        base = Path(tmp)
        ca = _pki_with_sorted_certs(base, critical_eku=critical_eku)
        lock = threading.Lock()
        holder: list[TSA] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    holder[0].requests += 1
                    try:
                        out = reply(base, body)
                        code = 200
                    except subprocess.CalledProcessError:
                        out, code = b"bad request", 400
                self.send_response(code)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *_args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        holder.append(TSA(base, ca, f"http://127.0.0.1:{server.server_address[1]}/tsa"))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield holder[0]
        finally:
            server.shutdown()
            server.server_close()
