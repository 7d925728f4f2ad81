"""Fixtures of the search tests: the toy encoder and a flat index over the toy corpus."""

import pytest

from sentsim.search import DocumentIndex

from ..toy_task import toy_encoder
from .corpus import IDS, META, TEXTS


@pytest.fixture
def encoder():
    return toy_encoder()


@pytest.fixture
def index(encoder, tmp_path):
    index = DocumentIndex.create(tmp_path / "index", encoder, backend="flat")
    index.add(TEXTS, ids=IDS, metadata=META)
    yield index
    index.close()
