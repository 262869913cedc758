"""numpy's CPU kernels, chosen before numpy loads: AVX2 sorts on AMD Zen 4.

numpy sorts (``np.sort``, ``argsort``, ``partition``: x86-simd-sort) with AVX-512 wherever the
CPU has it. On Zen 4 that path is 4-5x *slower* than numpy's AVX2 one, because its partition
step stores with a memory-destination VPCOMPRESS, which Zen 4 runs in microcode (AMD's Zen 4
software optimisation guide, 2.11.2; numpy/x86-simd-sort#6, numpy/numpy#32690; reportedly
fixed in Zen 5).

Sorting was about half of an audio landmark search's CPU and much of building the audio
indexes, so on Zen 4 numpy's AVX-512 group is turned off through its own switch,
``NPY_DISABLE_CPU_FEATURES``, which numpy reads once, on import. Measured side by side on this
project's 2-core Zen 4 machines (numpy 2.4): sorting 800k uint64 43 -> 11 ms; a 10 s query's
landmark search on the bench's real peaks 212 -> 128 ms at 24,970 works and 330 -> 190 ms at
99,970, the same landmarks for each of 60 queries, the index built in 23 s instead of 32.
float32 log10 and exp lose their AVX-512 kernels (1M values: 0.45 -> 1.8 ms), a few ms of a
track's landmark peaks; popcount, the image Hamming distances, keeps its (AVX512_ICL stays on).

Importing this module does it (``fingerprints/__init__.py`` imports it first). A user who sets
NPY_DISABLE_CPU_FEATURES or NPY_ENABLE_CPU_FEATURES (even empty) decides. Standard library only:
this must run before anything imports numpy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

# numpy 2.4 names the AVX-512 (Skylake) group X86_V4, older releases AVX512_SKX; a name a
# release does not know only raises an ImportWarning, ignored by default.
AVX512_SORTS = "X86_V4 AVX512_SKX"
NUMPY_SWITCHES = ("NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")


def is_zen4(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo's text is an AMD family 0x19 CPU with AVX-512: Zen 4 (Zen 3 is
    family 0x19 without AVX-512; Zen 5 is family 0x1A)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.split("\n\n", 1)[0].splitlines():  # the first processor is enough
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip(), value.strip())
    return (
        fields.get("vendor_id") == "AuthenticAMD"
        and fields.get("cpu family") == "25"
        and "avx512f" in fields.get("flags", "").split()
    )


def cpu_is_zen4(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """``is_zen4`` of this machine; False where /proc/cpuinfo cannot be read (not Linux)."""
    try:
        return is_zen4(cpuinfo.read_text(errors="replace"))
    except OSError:
        return False


def prefer_fast_sorts(
    environ: MutableMapping[str, str] = os.environ, cpuinfo: Path = Path("/proc/cpuinfo")
) -> bool:
    """Turn numpy's AVX-512 sorts off on Zen 4; True if it did. Nothing happens once numpy is
    loaded (its kernels are chosen), or when the user set numpy's switches."""
    if "numpy" in sys.modules or any(name in environ for name in NUMPY_SWITCHES):
        return False
    if not cpu_is_zen4(cpuinfo):
        return False
    environ["NPY_DISABLE_CPU_FEATURES"] = AVX512_SORTS
    return True


prefer_fast_sorts()
