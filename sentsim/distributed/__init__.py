"""Past one machine: encode a corpus on a Ray cluster, and read the embeddings it writes.

>>> import ray
>>> from sentsim.distributed import encode_dataset
>>> ds = ray.data.read_parquet("corpus/")  # columns id and text
>>> encoded = encode_dataset(ds, "all-MiniLM-L6-v2", workers=4, gpus_per_worker=1)

:func:`encode_to_folder` (``sentsim encode --engine ray``) writes them as Parquet shards with a
``sentsim.json``, and :func:`read_embeddings` reads such a folder back. Needs Ray Data
(``pip install 'sentsim[ray]'``), imported when a function needs it: reading a folder does not.
"""

from sentsim.distributed.encode import encode_dataset, encode_to_folder
from sentsim.distributed.runtime import ray_runtime
from sentsim.distributed.shards import read_embeddings
from sentsim.distributed.sources import read_dataset

__all__ = ["encode_dataset", "encode_to_folder", "ray_runtime", "read_dataset", "read_embeddings"]
