"""Masking sensitive values in text and in nested data (the core's :class:`opus.masking.Masker`).

Values of 6 characters or more are masked wherever they occur; shorter ones only where they
stand alone, so a short value does not mangle unrelated words.
"""

from __future__ import annotations

from opus.masking import MASK, Masker

#: The shell plugin's name for the core masker.
Redactor = Masker

__all__ = ["MASK", "Redactor"]
