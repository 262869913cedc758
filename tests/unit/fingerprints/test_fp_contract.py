"""FingerprintTypeContract (pytx SignalTypeAutoTest): one subclass per registered type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from fingerprints.audio import AudioChromaprint, AudioChromaprintBand
from fingerprints.base import FingerprintType, UnknownFingerprintType
from fingerprints.image import ImagePHash
from fingerprints.keypoints import ImageORB
from fingerprints.landmarks import AudioLandmarks
from fingerprints.multicrop import ImageMultiCropHash
from fingerprints.registry import ALL, by_name

GOLDEN = Path(__file__).resolve().parents[2] / "data" / "golden"


class FingerprintTypeContract:
    ftype: ClassVar[type[FingerprintType]]

    @pytest.fixture
    def golden(self) -> dict[str, Any]:
        return dict(json.loads((GOLDEN / f"{self.ftype.name}.json").read_text()))

    def test_registered_under_unique_name(self) -> None:
        assert [t.name for t in ALL].count(self.ftype.name) == 1
        assert by_name(self.ftype.name) is self.ftype

    def test_golden_version_matches(self, golden: dict[str, Any]) -> None:
        assert golden["version"] == self.ftype.version, "bump means: run make golden, review"

    def test_golden_values_stable(self, golden: dict[str, Any]) -> None:
        for case in golden["cases"]:
            data = (GOLDEN / case["file"]).read_bytes()
            assert self.ftype.from_bytes(data) == case["value"], case["file"]
            assert self.ftype.query_from_bytes(data) == case["query"], case["file"]

    def test_distance_to_self_is_zero(self, golden: dict[str, Any]) -> None:
        for case in golden["cases"]:
            assert self.ftype.distance(case["value"], case["value"]) == 0

    def test_distinct_media_are_far(self, golden: dict[str, Any]) -> None:
        values = [c["value"] for c in golden["cases"]]
        for a in values:
            for b in values:
                if a != b:
                    assert self.ftype.distance(a, b) > 0


def test_unknown_type() -> None:
    with pytest.raises(UnknownFingerprintType):
        by_name("no_such_type")


def test_every_type_has_a_contract_test() -> None:
    tested = {cls.ftype for cls in FingerprintTypeContract.__subclasses__()}
    assert tested == set(ALL)


class TestImagePHashContract(FingerprintTypeContract):
    ftype = ImagePHash


class TestImageMultiCropHashContract(FingerprintTypeContract):
    ftype = ImageMultiCropHash


class TestImageORBContract(FingerprintTypeContract):
    ftype = ImageORB


class TestAudioChromaprintContract(FingerprintTypeContract):
    ftype = AudioChromaprint


class TestAudioChromaprintBandContract(FingerprintTypeContract):
    ftype = AudioChromaprintBand


class TestAudioLandmarksContract(FingerprintTypeContract):
    ftype = AudioLandmarks
