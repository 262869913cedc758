"""RFC 6962 / RFC 9162 Merkle tree: the ledger's entries are its leaves.

Why a tree as well as the hash chain: an inclusion proof shows one entry is in a signed head
without handing over the whole ledger, and a consistency proof shows a newer head extends an
older one (nothing recorded before was rewritten). Hashes are raw 32-byte SHA-256 values; leaves
are hashed with a 0x00 prefix and interior nodes with 0x01 (second-preimage resistance).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already hashed leaves."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = _split(n)
    return node_hash(root_from_hashes(hashes[:k]), root_from_hashes(hashes[k:]))


def root(leaves: Sequence[bytes]) -> bytes:
    return root_from_hashes([leaf_hash(d) for d in leaves])


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over leaf hashes, leaf side first."""
    n = len(hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf {index} is not in a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(index, hashes[:k]), root_from_hashes(hashes[k:])]
    return [*inclusion_proof(index - k, hashes[k:]), root_from_hashes(hashes[:k])]


def consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): shows the tree of old_size leaves is a prefix of this one."""
    n = len(hashes)
    if not 0 <= old_size <= n:
        raise ValueError(f"old size {old_size} is not within 0..{n}")
    if old_size in (0, n):
        return []
    return _subproof(old_size, hashes, complete=True)


def _subproof(m: int, hashes: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if complete else [root_from_hashes(hashes)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], complete=complete), root_from_hashes(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], complete=False), root_from_hashes(hashes[:k])]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root that `proof` implies for a leaf hash; ValueError if malformed."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("inclusion proof too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    try:
        return root_from_inclusion(index, size, leaf, proof) == expected_root
    except ValueError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: does the tree (new_size, new_root) extend (old_size, old_root)?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
