from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.realm import Deployment, deploy


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = deploy(tmp_path_factory.mktemp("e2e"))
    yield d
    d.shutdown()


@pytest.fixture
def workdir(deployment: Deployment) -> Path:
    return deployment.workdir
