"""RFC 6962 Merkle tree: the Certificate Transparency / transparency-dev test vectors, then
properties for every tree size up to 64."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence import merkle

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
HASHES = [merkle.leaf_hash(d) for d in LEAVES]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_rfc6962_vectors(size: int) -> None:
    assert merkle.root(LEAVES[:size]).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    got = merkle.inclusion_proof(index, HASHES[:size])
    assert [p.hex() for p in got] == proof
    root = bytes.fromhex(ROOTS[size - 1])
    assert merkle.verify_inclusion(index, size, HASHES[index], got, root)
    if proof:  # every single-bit change to the proof, the leaf or the index is caught
        bad = [bytearray(p) for p in got]
        bad[0][0] ^= 1
        assert not merkle.verify_inclusion(
            index, size, HASHES[index], [bytes(b) for b in bad], root
        )
        assert not merkle.verify_inclusion(index, size, HASHES[index], got[:-1], root)
        assert not merkle.verify_inclusion(index, size, HASHES[index], [*got, got[0]], root)
        assert not merkle.verify_inclusion((index + 1) % size, size, HASHES[index], got, root)
    assert not merkle.verify_inclusion(index, size, HASHES[(index + 1) % 8], got, root)
    assert not merkle.verify_inclusion(size, size, HASHES[index], got, root)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[str]) -> None:
    got = merkle.consistency_proof(old, HASHES[:new])
    assert [p.hex() for p in got] == proof
    old_root, new_root = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
    assert merkle.verify_consistency(old, new, old_root, new_root, got)
    if old != new:
        assert not merkle.verify_consistency(old, new, new_root, new_root, got)
        assert not merkle.verify_consistency(old, new, old_root, old_root, got)
        assert not merkle.verify_consistency(old, new, old_root, new_root, got[:-1])
        assert not merkle.verify_consistency(old, new, old_root, new_root, [])


leaf_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=64)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_inclusion_verifies_for_every_size(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [merkle.leaf_hash(d) for d in leaves]
    root = merkle.root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = merkle.inclusion_proof(index, hashes)
    assert merkle.verify_inclusion(index, len(leaves), hashes[index], proof, root)
    forged = merkle.leaf_hash(b"forged" + leaves[index])
    assert not merkle.verify_inclusion(index, len(leaves), forged, proof, root)


@settings(max_examples=150, deadline=None)
@given(leaf_lists, st.data())
def test_consistency_verifies_for_every_pair(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [merkle.leaf_hash(d) for d in leaves]
    n = len(leaves)
    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(m, hashes)
    old_root, new_root = merkle.root_from_hashes(hashes[:m]), merkle.root_from_hashes(hashes)
    assert merkle.verify_consistency(m, n, old_root, new_root, proof)
    # A rewritten history (one old leaf changed) is not consistent with the new head.
    changed = [merkle.leaf_hash(b"x" + leaves[0]), *hashes[1:m]]
    assert not merkle.verify_consistency(m, n, merkle.root_from_hashes(changed), new_root, proof)


def test_exhaustive_small_trees() -> None:
    """Every (index, size) and (old, new) pair up to 64 leaves."""
    leaves = [i.to_bytes(2, "big") for i in range(64)]
    hashes = [merkle.leaf_hash(d) for d in leaves]
    roots = [merkle.root_from_hashes(hashes[:n]) for n in range(65)]
    for n in range(1, 65):
        for i in range(n):
            assert merkle.verify_inclusion(
                i, n, hashes[i], merkle.inclusion_proof(i, hashes[:n]), roots[n]
            )
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, hashes[:n])
            assert merkle.verify_consistency(m, n, roots[m], roots[n], proof)
            if m < n:
                assert not merkle.verify_consistency(
                    m, n, roots[m - 1] if m > 1 else roots[2], roots[n], proof
                )
