"""The LangChain and LlamaIndex adapters: the encoder's vectors, its search prompts, plain Python lists."""

import asyncio
import importlib
import sys

import numpy as np
import pytest

from sentsim import SentenceEncoder

TEXTS = ["The cat sat on the mat.", "A dog is running in the park.", "Rain is expected over the weekend."]
QUERY = "Where is the cat?"
PROMPTS = {"query": "query: ", "passage": "passage: ", "classification": "label this: "}


@pytest.fixture
def langchain():
    pytest.importorskip("langchain_core")
    return importlib.import_module("sentsim.integrations.langchain")


@pytest.fixture
def llamaindex():
    pytest.importorskip("llama_index.core")
    return importlib.import_module("sentsim.integrations.llamaindex")


@pytest.fixture
def prompted(tiny_transformer):
    """A model with search prompts and another default: the adapters must pick the search ones."""
    return SentenceEncoder(tiny_transformer, prompts=PROMPTS, default_prompt_name="classification").eval()


def assert_plain(vectors):
    assert type(vectors) is list and all(type(vector) is list for vector in vectors)
    assert all(type(value) is float for vector in vectors for value in vector)


def cosine(queries, documents):
    queries, documents = np.atleast_2d(queries), np.atleast_2d(documents)
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
        documents / np.linalg.norm(documents, axis=1, keepdims=True)
    ).T


def test_langchain_embeddings_are_the_encoders_as_plain_lists(langchain, tiny_encoder):
    embeddings = langchain.SentsimEmbeddings(tiny_encoder, batch_size=2)
    documents, query = embeddings.embed_documents(TEXTS), embeddings.embed_query(QUERY)
    assert_plain(documents)
    assert_plain([query])
    np.testing.assert_allclose(documents, tiny_encoder.encode(TEXTS), atol=1e-6)
    np.testing.assert_allclose(query, tiny_encoder.encode(QUERY), atol=1e-6)
    assert embeddings.embed_documents([]) == []
    np.testing.assert_allclose(asyncio.run(embeddings.aembed_documents(TEXTS)), documents, atol=1e-6)
    np.testing.assert_allclose(asyncio.run(embeddings.aembed_query(QUERY)), query, atol=1e-6)


def test_langchain_uses_the_query_and_document_prompts(langchain, prompted):
    embeddings = langchain.SentsimEmbeddings(prompted)
    documents, query = embeddings.embed_documents(TEXTS), embeddings.embed_query(QUERY)
    np.testing.assert_allclose(documents, prompted.encode(TEXTS, prompt_name="passage"), atol=1e-6)
    np.testing.assert_allclose(query, prompted.encode(QUERY, prompt_name="query"), atol=1e-6)
    assert not np.allclose(documents, prompted.encode(TEXTS), atol=1e-3)  # not the default prompt
    assert not np.allclose(query, prompted.encode(QUERY, prompt=""), atol=1e-3)


def test_a_model_without_search_prompts_encodes_texts_as_they_are(langchain, llamaindex, prompted):
    prompted.prompts = {"classification": "label this: "}  # a default prompt only: not used for search
    plain = prompted.encode(TEXTS, prompt="")
    np.testing.assert_allclose(langchain.SentsimEmbeddings(prompted).embed_documents(TEXTS), plain, atol=1e-6)
    embedding = llamaindex.SentsimEmbedding(prompted)
    np.testing.assert_allclose(embedding.get_text_embedding_batch(TEXTS), plain, atol=1e-6)
    np.testing.assert_allclose(embedding.get_query_embedding(TEXTS[0]), plain[0], atol=1e-6)


def test_langchain_in_memory_vector_store_ranks_by_the_encoders_cosine(langchain, prompted):
    from langchain_core.vectorstores import InMemoryVectorStore

    store = InMemoryVectorStore.from_texts(TEXTS, langchain.SentsimEmbeddings(prompted), ids=["a", "b", "c"])
    hits = store.similarity_search_with_score(QUERY, k=3)
    expected = cosine(prompted.encode(QUERY, prompt_name="query"), prompted.encode(TEXTS, prompt_name="passage"))[0]
    order = np.argsort(-expected)
    assert [document.page_content for document, _ in hits] == [TEXTS[i] for i in order]
    np.testing.assert_allclose([score for _, score in hits], expected[order], atol=1e-5)


def test_llamaindex_embedding_is_the_encoders_with_its_prompts(llamaindex, prompted):
    embedding = llamaindex.SentsimEmbedding(prompted, embed_batch_size=2)
    documents = embedding.get_text_embedding_batch(TEXTS)  # LlamaIndex calls in batches of 2
    assert_plain(documents)
    np.testing.assert_allclose(documents, prompted.encode(TEXTS, prompt_name="passage"), atol=1e-6)
    np.testing.assert_allclose(embedding.get_text_embedding(TEXTS[1]), documents[1], atol=1e-6)
    query = embedding.get_query_embedding(QUERY)
    assert_plain([query])
    np.testing.assert_allclose(query, prompted.encode(QUERY, prompt_name="query"), atol=1e-6)
    assert (embedding.model_name, embedding.embed_batch_size) == ("sentsim", 2)


def test_llamaindex_async_methods_give_the_same_vectors(llamaindex, tiny_encoder):
    embedding = llamaindex.SentsimEmbedding(tiny_encoder, embed_batch_size=1, num_workers=2)
    expected = tiny_encoder.encode(TEXTS)
    np.testing.assert_allclose(asyncio.run(embedding.aget_text_embedding_batch(TEXTS)), expected, atol=1e-6)
    np.testing.assert_allclose(asyncio.run(embedding.aget_text_embedding(TEXTS[2])), expected[2], atol=1e-6)
    np.testing.assert_allclose(
        asyncio.run(embedding.aget_query_embedding(QUERY)), tiny_encoder.encode(QUERY), atol=1e-6
    )


def test_llamaindex_vector_store_index_retrieves_by_the_encoders_cosine(llamaindex, prompted):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    nodes = [TextNode(text=text, id_=str(i)) for i, text in enumerate(TEXTS)]
    index = VectorStoreIndex(nodes=nodes, embed_model=llamaindex.SentsimEmbedding(prompted))  # no LLM needed
    hits = index.as_retriever(similarity_top_k=3).retrieve(QUERY)
    expected = cosine(prompted.encode(QUERY, prompt_name="query"), prompted.encode(TEXTS, prompt_name="passage"))[0]
    order = np.argsort(-expected)
    assert [hit.node.get_content() for hit in hits] == [TEXTS[i] for i in order]
    np.testing.assert_allclose([hit.score for hit in hits], expected[order], atol=1e-5)


def test_the_adapters_load_a_model_folder(langchain, llamaindex, prompted, tmp_path):
    prompted.save_pretrained(tmp_path / "model")
    expected = prompted.encode(TEXTS, prompt_name="passage")
    embeddings = langchain.SentsimEmbeddings(str(tmp_path / "model"))
    np.testing.assert_allclose(embeddings.embed_documents(TEXTS), expected, atol=1e-6)
    embedding = llamaindex.SentsimEmbedding(tmp_path / "model")
    np.testing.assert_allclose(embedding.get_text_embedding_batch(TEXTS), expected, atol=1e-6)
    assert embedding.model_name == str((tmp_path / "model").resolve())


def test_adapter_mistakes_are_named(langchain, llamaindex, tiny_encoder, prompted):
    with pytest.raises(TypeError, match="model must be a SentenceEncoder, a model name or a folder, got int"):
        langchain.SentsimEmbeddings(42)
    with pytest.raises(TypeError, match="model must be a SentenceEncoder"):
        llamaindex.SentsimEmbedding(None)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        langchain.SentsimEmbeddings(tiny_encoder, batch_size=0)
    embeddings = langchain.SentsimEmbeddings(tiny_encoder)
    with pytest.raises(TypeError, match="texts must be a list of str here, got a single str"):
        embeddings.embed_documents("one text")
    with pytest.raises(TypeError, match="a query must be a str, got list"):
        embeddings.embed_query(["one text"])
    prompted.include_prompt = False  # its search prompts could not be pooled
    with pytest.raises(ValueError, match="pools without them \\(include_prompt=False\\)"):
        langchain.SentsimEmbeddings(prompted)


@pytest.mark.parametrize(
    ("module", "framework", "package"),
    [("langchain", "langchain_core", "langchain-core"), ("llamaindex", "llama_index", "llama-index-core")],
)
def test_a_missing_framework_names_its_package(monkeypatch, module, framework, package):
    monkeypatch.setitem(sys.modules, framework, None)  # import of it, or of anything under it, now fails
    for name in [name for name in sys.modules if name.startswith(f"{framework}.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, f"sentsim.integrations.{module}", raising=False)
    with pytest.raises(ImportError, match=f"pip install {package}"):
        importlib.import_module(f"sentsim.integrations.{module}")
