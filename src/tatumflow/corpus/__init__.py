"""Corpora: built-in (music21) exports, folders and CSV indexes, and their splits."""

from .builtin import BUILTIN_CORPORA, export_corpus, score_to_performance
from .sources import SourceFile, from_csv, from_folder, hash_split, resolve_source

__all__ = [
    "BUILTIN_CORPORA", "export_corpus", "score_to_performance", "SourceFile", "from_csv",
    "from_folder", "hash_split", "resolve_source",
]
