"""The Transkun engine's decoding options: none. Its semi-CRF takes the best-scoring set of notes outright, with no
threshold to tune; the table exists so that a preset names the engine as it names any other. Standard library only,
like every option group (model.options)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...options import OptionGroup


@dataclass(frozen=True, kw_only=True)
class TranskunOptions(OptionGroup):
    """No options: a preset's [decode] table for Transkun is empty."""

    SPECS: ClassVar = {}
    WHERE: ClassVar = "transkun decode options"
