"""Vectron's Python SDK: a client for the coordinator's REST API.

    from vectron import Client
    client = Client("http://127.0.0.1:8080", api_key="vk_...")
    docs = client.create_collection("docs", dimension=3, shards=2)
    docs.upsert([("a", [1, 2, 3], {"lang": "en"}), ("b", [3, 2, 1])])
    docs.search([1, 2, 3.5], k=5, filter={"must": [{"key": "lang", "match": "en"}]})

See clients/python/README.md and docs/openapi.yaml.
"""
from .client import Client, Collection
from .errors import (VectronError, ConnectionFailed, BadRequest, Unauthorized, Forbidden,
                     NotFound, Conflict, PayloadTooLarge, RateLimited, Unavailable)

__version__ = "1.0.0"
__all__ = ["Client", "Collection", "VectronError", "ConnectionFailed", "BadRequest",
           "Unauthorized", "Forbidden", "NotFound", "Conflict", "PayloadTooLarge",
           "RateLimited", "Unavailable"]
