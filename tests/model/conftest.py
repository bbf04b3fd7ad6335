"""Fixtures for the model tests: real .rknn files built once by rknn-toolkit2 and cached
(tests/standins/model_builder.py's int8 models, tests/model/rknn_variants.py's others)."""

from __future__ import annotations

import pytest

from tests.model.rknn_variants import built_variants
from tests.standins.model_builder import built_models


@pytest.fixture(scope="session")
def rknn_models() -> dict:
    """name -> .rknn path: cls_rk3588, tiny_rk3588, tiny_rk3566, tiny_rk3576, float_rk3566,
    dfp_rk3588, dynamic_rk3568."""
    return {**built_models(), **built_variants()}
