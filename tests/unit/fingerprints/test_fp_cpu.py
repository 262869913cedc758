"""numpy's sort kernels: AVX2 on AMD Zen 4, numpy's own choice everywhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fingerprints import cpu

ZEN4_FLAGS = "fpu sse2 avx avx2 bmi2 avx512f avx512dq avx512bw avx512vl avx512_vpopcntdq"


def cpuinfo(vendor: str, family: int, flags: str, processors: int = 2) -> str:
    one = f"processor\t: {{n}}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: 17\n"
    one += f"model name\t: AMD EPYC\nflags\t\t: {flags}\n"
    return "\n".join(one.format(n=n) for n in range(processors))


@pytest.mark.parametrize(
    ("text", "zen4"),
    [
        (cpuinfo("AuthenticAMD", 25, ZEN4_FLAGS), True),
        (cpuinfo("AuthenticAMD", 25, "fpu sse2 avx avx2 bmi2"), False),  # Zen 3
        (cpuinfo("AuthenticAMD", 26, ZEN4_FLAGS), False),  # Zen 5: the compress is fast
        (cpuinfo("GenuineIntel", 6, ZEN4_FLAGS), False),  # AVX-512 is numpy's fast path
        (cpuinfo("AuthenticAMD", 25, ZEN4_FLAGS.replace("avx512f ", "avx512fx ")), False),
        ("", False),
        ("garbage without colons\n\x00\xff", False),
    ],
)
def test_only_zen4_is_told_apart(text: str, zen4: bool) -> None:
    assert cpu.is_zen4(text) is zen4


def test_zen4_turns_numpys_avx512_off_unless_the_user_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zen4, intel = tmp_path / "zen4", tmp_path / "intel"
    zen4.write_text(cpuinfo("AuthenticAMD", 25, ZEN4_FLAGS))
    intel.write_text(cpuinfo("GenuineIntel", 6, ZEN4_FLAGS))
    # This test process loaded numpy long ago: then nothing may change (its kernels are chosen).
    assert cpu.prefer_fast_sorts({}, zen4) is False
    monkeypatch.delitem(sys.modules, "numpy")  # as if before numpy's import
    env: dict[str, str] = {}
    assert cpu.prefer_fast_sorts(env, zen4) is True
    assert env == {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_SKX"}
    for chosen in ({"NPY_DISABLE_CPU_FEATURES": ""}, {"NPY_ENABLE_CPU_FEATURES": "X86_V3"}):
        env = dict(chosen)
        assert cpu.prefer_fast_sorts(env, zen4) is False
        assert env == chosen
    env = {}
    assert cpu.prefer_fast_sorts(env, intel) is False
    assert cpu.prefer_fast_sorts(env, tmp_path / "missing") is False
    assert env == {}


def test_importing_fingerprints_picks_the_kernels_before_numpy_loads() -> None:
    """On this machine, whatever it is: a fresh interpreter that imports `fingerprints` first
    runs numpy without its AVX-512 group exactly when the CPU is a Zen 4 with AVX-512."""
    env = {k: v for k, v in os.environ.items() if k not in cpu.NUMPY_SWITCHES}
    probe = (
        "import fingerprints, json, os\n"
        "from numpy._core._multiarray_umath import __cpu_features__ as f\n"
        "print(json.dumps([os.environ.get('NPY_DISABLE_CPU_FEATURES'), f['X86_V4']]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    disabled, v4 = json.loads(out.stdout)
    zen4 = cpu.cpu_is_zen4()
    assert disabled == ("X86_V4 AVX512_SKX" if zen4 else None)
    if zen4:
        assert v4 is False
