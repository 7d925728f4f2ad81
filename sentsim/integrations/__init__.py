"""Adapters that let retrieval frameworks embed with a sentsim model, in-process.

- :mod:`sentsim.integrations.langchain`: ``SentsimEmbeddings``, a LangChain ``Embeddings``
  (``pip install 'sentsim[langchain]'``).
- :mod:`sentsim.integrations.llamaindex`: ``SentsimEmbedding``, a LlamaIndex ``BaseEmbedding``
  (``pip install 'sentsim[llamaindex]'``).

Both embed queries with the model's query prompt and documents with its document prompt, as
:mod:`sentsim.search` does. Each framework is imported only by its own module.
"""
