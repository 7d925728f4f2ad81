"""Fixtures of the search tests: the toy encoder, the store under test, and a flat index over the toy corpus.

Tests run on the FAISS store; those decorated with :data:`BOTH_STORES` run on the Milvus store
too, each index in a collection of its own inside one Milvus Lite database per test module
(starting Milvus Lite costs about a second, a collection half of one).
"""

import uuid

import pytest

from sentsim.search import DocumentIndex

from ..toy_task import toy_encoder
from .corpus import IDS, META, TEXTS

BOTH_STORES = pytest.mark.parametrize("store", ["faiss", "milvus"], indirect=True)


@pytest.fixture
def encoder():
    return toy_encoder()


@pytest.fixture(scope="module")
def milvus_database(tmp_path_factory):
    """A Milvus Lite database file for the module's Milvus indexes, kept open (and its server up) meanwhile."""
    pytest.importorskip("milvus_lite")
    from sentsim.search.milvus_connection import connect, disconnect

    path = str(tmp_path_factory.mktemp("milvus") / "shared.db")
    connect(path, None)
    yield path
    disconnect(path, None)


@pytest.fixture
def store(request):
    """The store under test: "faiss" unless a test is parametrized with :data:`BOTH_STORES`."""
    return getattr(request, "param", "faiss")


@pytest.fixture
def make_index(store, request):
    """``DocumentIndex.create`` in the store under test (closed after the test)."""
    made = []

    def make(folder, encoder, **options):
        if store == "milvus":
            database = request.getfixturevalue("milvus_database")
            options = {"store": "milvus", "milvus_uri": database, "collection": f"c{uuid.uuid4().hex}", **options}
        index = DocumentIndex.create(folder, encoder, **options)
        made.append(index)
        return index

    yield make
    for index in made:
        index.close()


@pytest.fixture
def index(make_index, encoder, tmp_path):
    index = make_index(tmp_path / "index", encoder, backend="flat")
    index.add(TEXTS, ids=IDS, metadata=META)
    return index
