"""Fixtures of the tests/rl package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import shutdown_ray_after_package


@pytest.fixture(scope="package", autouse=True)
def fresh_ray_per_package() -> Iterator[None]:
    yield from shutdown_ray_after_package()
