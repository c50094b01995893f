"""The ingest pipeline (``vodstack ingest``): probe, split, encode, merge, validate, package, publish.

One module per stage; ``pipeline.ingest(IngestConfig(...))`` runs them all. See ``docs/ingest.md``.
"""
from .errors import (EncodeError, IngestError, LadderError, SourceError, SubtitleError,  # noqa: F401
                     ValidationError)
from .pipeline import IngestConfig, IngestEvents, IngestResult, ingest  # noqa: F401

__all__ = ["EncodeError", "IngestConfig", "IngestError", "IngestEvents", "IngestResult", "LadderError",
           "SourceError", "SubtitleError", "ValidationError", "ingest"]
