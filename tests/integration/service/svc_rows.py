"""Rows the service tests build directly: rightsholders, works and uses, without fingerprinting."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from evidence.catalogue import get_rightsholder
from evidence.models import Work


def make_work(session: Session, holder: str, ref: str, kind: str = "image") -> Work:
    owner = get_rightsholder(session, holder)
    work = Work(
        rightsholder_id=owner.id,
        ref=ref,
        kind=kind,
        title=f"title of {ref}",
        sha256="sha256:" + hashlib.sha256(f"{holder}/{ref}".encode()).hexdigest(),
        size=1,
        mime="image/png" if kind == "image" else "audio/flac",
    )
    session.add(work)
    session.flush()
    return work


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def png_bytes(seed: int, size: int = 96) -> bytes:
    """A distinct, fingerprintable picture per seed (blocks of random colour)."""
    import io
    import random

    from PIL import Image

    rng = random.Random(seed)
    img = Image.new("RGB", (size, size))
    step = size // 8
    for x in range(0, size, step):
        for y in range(0, size, step):
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            img.paste(colour, (x, y, x + step, y + step))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
