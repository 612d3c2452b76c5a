"""The doctor's round trip (filled in by the next change)."""

from __future__ import annotations
