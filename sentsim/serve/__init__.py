"""``sentsim serve``: the model and indexes behind an HTTP endpoint, with dynamic batching.

>>> from sentsim.serve import ServeConfig, Service, create_app
>>> app = create_app(Service(ServeConfig(model="all-MiniLM-L6-v2", indexes={"docs": "my-index"})))
"""

from sentsim.serve.app import create_app
from sentsim.serve.service import ServeConfig, Service

__all__ = ["ServeConfig", "Service", "create_app"]
