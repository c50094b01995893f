"""The edge: an Open Connect-style caching server (tiers, fill, coalescing, slices, tokens, purge,
prefill, health, metrics) and, in ``edge.steering``, the steering service.

The token format is the edge's; the steering service imports :func:`sign_token` from here.
"""
from .tokens import Verdict, sign_token, verify_token

__all__ = ["Verdict", "sign_token", "verify_token"]
