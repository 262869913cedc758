"""Verify an evidence pack offline, with nothing but the pack: no database, no home, no network.

Checks, each failure named by member: the ZIP's shape (no traversal or absolute names, no
symlinks, no duplicates, bounded entry count and sizes, nothing extracted), every member's
SHA-256 and size against the manifest, the manifest's Ed25519 signature, every ledger entry
(content hash, entry hash, signature, RFC 6962 inclusion proof to the signed checkpoint), the
captures against their signed ledger records (WARC, WACZ and screenshot hashes, the media payload
read back with warcio), each WACZ opened in place (its datapackage.json hashes, its WARC payloads
against the signed record), and the RFC 3161 token over the checkpoint when there is one
(imprint, nonce, signature and chain, the TSA certificate's critical timeStamping EKU, and the
TSA policy the manifest states).
"""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from evidence import ledger, merkle
from evidence.keys import key_id
from evidence.pack import FORMAT, NOT_TIMESTAMPED

MAX_ENTRIES = 10_000
MAX_TOTAL = 4 * 1024**3  # uncompressed bytes, declared and actually read
MAX_JSON = 64 * 1024**2
MAX_RATIO = 200  # uncompressed/compressed, for members over 1 MiB
MAX_NAME = 255
SPECIAL = ("manifest.json", "manifest.sig")


class _Budget:
    def __init__(self) -> None:
        self.read = 0


def _name_problem(name: str) -> str | None:
    if not name or len(name) > MAX_NAME:
        return "unsafe member name (empty or too long)"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "unsafe member name (absolute path)"
    if "\\" in name or any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        return "unsafe member name (backslash or control character)"
    if any(part in ("..", ".") for part in name.split("/")):
        return "unsafe member name (path traversal)"
    return None


def _shape(zf: zipfile.ZipFile) -> list[str]:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        return [f"pack: {len(infos)} entries, more than the {MAX_ENTRIES} allowed (zip bomb?)"]
    problems: list[str] = []
    seen: set[str] = set()
    total = 0
    for info in infos:
        shown = info.filename[:120]
        reason = _name_problem(info.filename)
        if reason:
            problems.append(f"{shown!r}: {reason}")
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(f"{shown}: symlink entry")
        if info.is_dir():
            problems.append(f"{shown}: directory entry")
        if info.filename in seen:
            problems.append(f"{shown}: duplicate member name")
        seen.add(info.filename)
        total += info.file_size
        if info.file_size > 1024**2 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            problems.append(f"{shown}: compression ratio above {MAX_RATIO} (zip bomb?)")
        if info.flag_bits & 0x1:
            problems.append(f"{shown}: encrypted member")
    if total > MAX_TOTAL:
        problems.append(f"pack: {total} bytes uncompressed, more than {MAX_TOTAL} (zip bomb?)")
    return problems


def _read(zf: zipfile.ZipFile, name: str, budget: _Budget, cap: int) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > cap:
        raise ValueError(f"larger than {cap} bytes")
    with zf.open(info) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"larger than {cap} bytes")
    budget.read += len(data)
    if budget.read > MAX_TOTAL:
        raise ValueError("pack larger than the verification cap")
    return data


def _hash_member(zf: zipfile.ZipFile, name: str, budget: _Budget) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with zf.open(name) as fh:
        while chunk := fh.read(1024 * 1024):
            size += len(chunk)
            budget.read += len(chunk)
            if budget.read > MAX_TOTAL:
                raise ValueError("pack larger than the verification cap")
            h.update(chunk)
    return "sha256:" + h.hexdigest(), size


def _load_json(zf: zipfile.ZipFile, name: str, budget: _Budget, problems: list[str]) -> Any:
    try:
        return json.loads(_read(zf, name, budget, MAX_JSON))
    except KeyError:
        problems.append(f"{name}: missing")
    except (ValueError, zipfile.BadZipFile, NotImplementedError) as exc:
        problems.append(f"{name}: unreadable ({str(exc)[:120]})")
    return None


def verify_pack(path: Path) -> dict[str, Any]:
    """`{"ok", "problems", "warnings", ...}`; never raises for a bad pack."""
    problems: list[str] = []
    warnings: list[str] = []
    result: dict[str, Any] = {"ok": False, "problems": problems, "warnings": warnings}
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        problems.append(f"{path}: no such file")
        return result
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        # NotImplementedError: a central directory entry claiming a ZIP version zipfile lacks
        problems.append(f"{path.name}: not a ZIP file ({str(exc)[:120]})")
        return result
    with zf:
        problems.extend(_shape(zf))
        if not problems:  # a hostile shape: read nothing more
            try:
                _verify(zf, result)
            except (
                zipfile.BadZipFile,
                zlib.error,
                NotImplementedError,  # unknown compression method
                ValueError,
                OSError,
                EOFError,
            ) as exc:
                problems.append(f"pack: unreadable ({type(exc).__name__}: {str(exc)[:160]})")
    # Names and values come from the pack: never let them break or forge an output line.
    result["problems"] = [_printable(p) for p in problems]
    result["warnings"] = [_printable(w) for w in warnings]
    result["ok"] = not problems
    return result


def _printable(text: str) -> str:
    """Escape control, format (e.g. RTL override) and other unprintable characters."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _verify(zf: zipfile.ZipFile, result: dict[str, Any]) -> None:
    problems: list[str] = result["problems"]
    warnings: list[str] = result["warnings"]
    budget = _Budget()
    names = set(zf.namelist())
    manifest_raw = b""
    try:
        manifest_raw = _read(zf, "manifest.json", budget, MAX_JSON)
        manifest = json.loads(manifest_raw)
    except KeyError:
        problems.append("manifest.json: missing")
        return
    except ValueError as exc:
        problems.append(f"manifest.json: not valid JSON ({str(exc)[:120]})")
        manifest = None
    if not isinstance(manifest, dict):
        problems.append("manifest.json: not a JSON object")
        return
    if manifest.get("format") != FORMAT:
        problems.append(f"manifest.json: unknown format {str(manifest.get('format'))[:60]!r}")
    public = _public_key(zf, budget, manifest, problems)
    sig: bytes | None = None
    try:
        sig = _read(zf, "manifest.sig", budget, 4096)
    except KeyError:
        problems.append("manifest.sig: missing")
    except ValueError:
        sig = b""
    if public is not None and sig is not None:
        text = sig.decode("ascii", "replace").strip()
        if not ledger.verify_signature(public, text, manifest_raw):
            problems.append("manifest.sig: signature does not verify over manifest.json")

    listed = manifest.get("members")
    if not isinstance(listed, dict):
        problems.append("manifest.json: no member list")
        listed = {}
    for name, meta in sorted(listed.items()):
        if name in SPECIAL or _name_problem(name):
            problems.append(f"{str(name)[:120]}: not allowed in the member list")
            continue
        if name not in names:
            problems.append(f"{name}: missing")
            continue
        digest, size = _hash_member(zf, name, budget)
        if not isinstance(meta, dict) or digest != meta.get("sha256") or size != meta.get("size"):
            problems.append(f"{name}: sha256 mismatch")
    for name in sorted(names - set(listed) - set(SPECIAL)):
        problems.append(f"{name[:120]}: extra member not in the manifest")

    result["key_id"] = manifest.get("key_id")
    result["matches"] = len(manifest.get("matches") or [])
    result["captures"] = len(manifest.get("captures") or [])
    if public is None:
        return
    checkpoint = _check_ledger(zf, budget, manifest, public, problems)
    result["checkpoint"] = checkpoint
    if checkpoint is not None:
        result["consistency"] = _check_consistency(zf, budget, checkpoint, problems)
    _check_captures(zf, budget, manifest, problems)
    result["timestamp"] = _check_timestamp(zf, budget, manifest, checkpoint, problems, warnings)


def _public_key(
    zf: zipfile.ZipFile, budget: _Budget, manifest: dict[str, Any], problems: list[str]
) -> Ed25519PublicKey | None:
    try:
        pem = _read(zf, "public_key.pem", budget, 4096)
    except KeyError:
        problems.append("public_key.pem: missing")
        return None
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        problems.append("public_key.pem: not a public key")
        return None
    if not isinstance(key, Ed25519PublicKey):
        problems.append("public_key.pem: not an Ed25519 key")
        return None
    if key_id(key) != manifest.get("key_id"):
        problems.append("public_key.pem: key id does not match the manifest's key_id")
    return key


def _check_ledger(
    zf: zipfile.ZipFile,
    budget: _Budget,
    manifest: dict[str, Any],
    public: Ed25519PublicKey,
    problems: list[str],
) -> dict[str, Any] | None:
    cp = _load_json(zf, "ledger/checkpoint.json", budget, problems)
    entries = _load_json(zf, "ledger/entries.json", budget, problems)
    if not isinstance(cp, dict):
        return None
    for p in ledger.check_checkpoint(cp, public):
        problems.append(f"ledger/checkpoint.json: {p}")
    if cp != manifest.get("checkpoint"):
        problems.append("ledger/checkpoint.json: differs from the manifest's checkpoint")
    if not isinstance(entries, list):
        if entries is not None:
            problems.append("ledger/entries.json: not a list")
        return cp
    try:
        size, root = int(cp["size"]), ledger.digest_bytes(str(cp["root"]))
    except (KeyError, ValueError, TypeError):
        problems.append("ledger/checkpoint.json: malformed size or root")
        return cp
    seqs: list[int] = []
    for e in entries:
        if not isinstance(e, dict):
            problems.append("ledger/entries.json: an entry is not an object")
            continue
        seq = e.get("seq")
        where = f"ledger/entries.json: entry {str(seq)[:20]}"
        if not isinstance(seq, int) or isinstance(seq, bool):
            problems.append(f"{where}: no sequence number")
            continue
        seqs.append(seq)
        for p in ledger.check_entry(e, public):
            problems.append(f"{where}: {p}")
        try:
            proof = [bytes.fromhex(h) for h in e.get("inclusion_proof", [])]
            leaf = merkle.leaf_hash(ledger.digest_bytes(str(e.get("entry_hash"))))
            ok = e.get("leaf_index") == seq - 1 and merkle.verify_inclusion(
                seq - 1, size, leaf, proof, root
            )
        except (ValueError, TypeError):
            ok = False
        if not ok:
            problems.append(f"{where}: inclusion proof does not lead to the signed checkpoint")
    if len(seqs) != len(set(seqs)):
        problems.append("ledger/entries.json: an entry appears twice")
    if sorted(seqs) != sorted(manifest.get("ledger_seqs") or []):
        problems.append("ledger/entries.json: entries differ from the manifest's ledger_seqs")
    return cp


def _check_consistency(
    zf: zipfile.ZipFile, budget: _Budget, cp: dict[str, Any], problems: list[str]
) -> dict[int, str]:
    """Earlier checkpoints (size -> root) that this pack's head provably extends."""
    name = "ledger/consistency.json"
    if name not in zf.namelist():
        return {}
    items = _load_json(zf, name, budget, problems)
    proved: dict[int, str] = {}
    if not isinstance(items, list):
        if items is not None:
            problems.append(f"{name}: not a list")
        return proved
    try:
        new_size, new_root = int(cp["size"]), ledger.digest_bytes(str(cp["root"]))
    except (KeyError, TypeError, ValueError):
        return proved
    for item in items:
        try:
            size, root = int(item["size"]), str(item["root"])
            proof = [bytes.fromhex(h) for h in item["proof"]]
            ok = merkle.verify_consistency(
                size, new_size, ledger.digest_bytes(root), new_root, proof
            )
        except (KeyError, TypeError, ValueError):
            problems.append(f"{name}: malformed proof")
            continue
        if not ok:
            problems.append(f"{name}: checkpoint {size} is not consistent with the head")
        else:
            proved[size] = root
    return proved


def compare_with_older(new: dict[str, Any], old_pack: Path) -> list[str]:
    """Problems if the older pack's signed head is not part of the newer pack's history (a fork
    or a rewritten ledger); both results come from `verify_pack`."""
    old = verify_pack(old_pack)
    if not old["ok"]:
        return [f"older pack: {p}" for p in old["problems"]]
    if old.get("key_id") != new.get("key_id"):
        return ["older pack: signed by another key"]
    ocp, ncp = old.get("checkpoint") or {}, new.get("checkpoint") or {}
    osize, nsize = int(ocp.get("size", -1)), int(ncp.get("size", -1))
    if osize == nsize:
        return (
            []
            if ocp.get("root") == ncp.get("root")
            else [f"fork: two different heads for size {osize}"]
        )
    if osize > nsize:
        return [f"older pack: its head ({osize}) is newer than this pack's ({nsize})"]
    proved = new.get("consistency") or {}
    if osize not in proved:
        return [f"older pack: no consistency proof from size {osize} in this pack"]
    if proved[osize] != ocp.get("root"):
        return [f"fork: the older pack's head {osize} is not in this ledger's history"]
    return []


def _entries_by_subject(zf: zipfile.ZipFile, budget: _Budget) -> dict[str, dict[str, Any]]:
    try:
        entries = json.loads(_read(zf, "ledger/entries.json", budget, MAX_JSON))
    except (KeyError, ValueError):
        return {}
    if not isinstance(entries, list):
        return {}
    return {str(e.get("subject")): e for e in entries if isinstance(e, dict)}


def _check_captures(
    zf: zipfile.ZipFile, budget: _Budget, manifest: dict[str, Any], problems: list[str]
) -> None:
    by_subject = _entries_by_subject(zf, budget)
    members = manifest.get("members") or {}
    for cap in manifest.get("captures") or []:
        if not isinstance(cap, dict):
            problems.append("manifest.json: a capture is not an object")
            continue
        cid = str(cap.get("id"))[:40]
        entry = by_subject.get(f"capture:{cid}")
        if entry is None:
            problems.append(f"capture {cid}: no signed ledger entry in the pack")
            continue
        signed = entry.get("content") or {}
        if signed != cap.get("custody"):
            problems.append(f"capture {cid}: custody record differs from its signed ledger entry")
        arts = signed.get("artifacts") or {}
        for kind in ("warc", "wacz", "screenshot"):
            name = cap.get(kind)
            if kind in arts and not name:
                problems.append(f"capture {cid}: its {kind} is not in the pack")
            if not name:
                continue
            want = (arts.get(kind) or {}).get("sha256")
            if not isinstance(members.get(name), dict) or members[name].get("sha256") != want:
                problems.append(f"{name}: does not match the signed capture record")
        if cap.get("warc") in zf.namelist():
            _check_warc(zf, str(cap["warc"]), signed, problems)
        if cap.get("wacz") in zf.namelist():
            _check_wacz(zf, budget, str(cap["wacz"]), signed, problems)


def _check_warc(
    zf: zipfile.ZipFile, name: str, signed: dict[str, Any], problems: list[str]
) -> None:
    media = signed.get("media") or {}
    want_url, want_sha = media.get("final_url"), media.get("sha256")
    found = None
    try:
        with zf.open(name) as fh:
            for rec in ArchiveIterator(fh):
                if (
                    rec.rec_type == "response"
                    and rec.rec_headers.get_header("WARC-Target-URI") == want_url
                ):
                    h = hashlib.sha256()
                    stream = rec.content_stream()
                    while chunk := stream.read(1024 * 1024):
                        h.update(chunk)
                    found = "sha256:" + h.hexdigest()
    except (ArchiveLoadFailed, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        problems.append(f"{name}: not a readable WARC ({str(exc)[:100]})")
        return
    if found is None:
        problems.append(f"{name}: no response record for the media URL")
    elif found != want_sha:
        problems.append(f"{name}: media payload digest differs from the signed record")


def signed_payloads(signed: dict[str, Any]) -> dict[str, str]:
    """Record target URI -> SHA-256 the signed capture record gives for it: the page and the
    media responses, and the screenshot's resource record."""
    out: dict[str, str] = {}
    for part in ("page", "media"):
        ex = signed.get(part)
        if isinstance(ex, dict) and isinstance(ex.get("final_url"), str) and ex.get("sha256"):
            out[ex["final_url"]] = str(ex["sha256"])
    shot, page = signed.get("screenshot"), signed.get("page")
    if isinstance(shot, dict) and shot.get("sha256") and isinstance(page, dict):
        out[f"urn:rightswatch:screenshot:{page.get('final_url')}"] = str(shot["sha256"])
    return out


def _check_wacz(
    zf: zipfile.ZipFile, budget: _Budget, name: str, signed: dict[str, Any], problems: list[str]
) -> None:
    """The WACZ opened inside the pack: its own datapackage hashes, and its WARC payloads
    against the signed capture record (so an inconsistent WACZ is named even in a pack whose
    manifest was re-signed around it)."""
    from evidence.wacz import check_wacz

    budget.read += zf.getinfo(name).file_size
    if budget.read > MAX_TOTAL:
        raise ValueError("pack larger than the verification cap")
    with zf.open(name) as fh:
        found = check_wacz(fh, payloads=signed_payloads(signed))
    problems.extend(f"{name}: {p}" for p in found)


def _check_timestamp(
    zf: zipfile.ZipFile,
    budget: _Budget,
    manifest: dict[str, Any],
    cp: dict[str, Any] | None,
    problems: list[str],
    warnings: list[str],
) -> dict[str, Any] | None:
    """The token's time and authority, or None when the pack is not externally timestamped."""
    from evidence import timestamp

    names = set(zf.namelist())
    if "timestamp/response.tsr" not in names:
        has_request = "timestamp/request.tsq" in names
        warnings.append(
            NOT_TIMESTAMPED
            + ("; the prepared RFC 3161 request is timestamp/request.tsq" if has_request else "")
        )
        return None
    if cp is None:
        return None
    if "timestamp/request.tsq" not in names:
        problems.append("timestamp/request.tsq: missing (needed to check the token's nonce)")
        return None
    try:
        message = ledger.checkpoint_message(cp)
    except (KeyError, ValueError, TypeError):
        problems.append("ledger/checkpoint.json: malformed, the token cannot be checked")
        return None
    stated = (manifest.get("timestamp") or {}).get("policy")
    if not isinstance(stated, str) or not stated:
        problems.append("manifest.json: the TSA policy of the time-stamp is not stated")
        stated = None
    check = timestamp.check_token(
        _read(zf, "timestamp/response.tsr", budget, timestamp.MAX_RESPONSE_BYTES),
        _read(zf, "timestamp/request.tsq", budget, 64 * 1024),
        message,
        policy=stated,
    )
    problems.extend(f"timestamp/response.tsr: {p}" for p in check.problems)
    warnings.extend(check.warnings)
    if check.gen_time is None:
        return None
    limit = check.gen_time + timestamp.SKEW_WINDOW
    window = int(timestamp.SKEW_WINDOW.total_seconds() // 60)
    when: list[tuple[str, str]] = [("the checkpoint", str(cp.get("created_at")))]
    when += [
        (f"capture {str(c.get('id'))[:40]}", str(c.get("finished_at")))
        for c in manifest.get("captures") or []
        if isinstance(c, dict)
    ]
    for what, value in when:
        try:
            at = ledger.parse_iso(value)
        except ValueError:
            problems.append(f"{what}: unreadable time {value[:40]!r}")
            continue
        if at > limit:
            problems.append(
                f"{what}: recorded at {value}, later than the TSA time"
                f" {ledger.iso(check.gen_time)} + {window} min"
            )
    return {"gen_time": ledger.iso(check.gen_time), "tsa": check.tsa, "policy": check.policy}
