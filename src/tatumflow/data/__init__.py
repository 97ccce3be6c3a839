"""Token stores and (in :mod:`tatumflow.data.dataset`) torch datasets over them."""

from .stats import store_statistics
from .store import PrepareResult, TokenStore, prepare_store

__all__ = ["TokenStore", "prepare_store", "PrepareResult", "store_statistics"]
