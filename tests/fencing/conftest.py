"""The BMC emulators of ``bmc_support`` for each test that asks for ``bmcs``."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from bmc_support import Bmcs, running_bmcs


@pytest.fixture
def bmcs(tmp_path: Path) -> Iterator[Bmcs]:
    with running_bmcs(tmp_path) as running:
        yield running
