from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kernel_client import Kernel  # noqa: E402


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    """A real ipykernel with parcoord_nb loaded, shared by the tests of one module."""
    with Kernel() as k:
        r = k.execute("%load_ext parcoord_nb")
        assert r.status == "ok", r.text
        yield k


@pytest.fixture
def fresh_kernel() -> Iterator[Kernel]:
    """A kernel of its own, for tests that interrupt or break it."""
    with Kernel() as k:
        r = k.execute("%load_ext parcoord_nb")
        assert r.status == "ok", r.text
        yield k
