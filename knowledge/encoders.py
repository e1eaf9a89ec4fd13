"""What each sentence encoder needs around the text it embeds, and its gate calibration.

multilingual-e5 (Kefu's Chinese encoder, :func:`components.model_prep.resolve_zh_encoder`) was
trained with an instruction prefix: ``"query: "`` before a question and ``"passage: "`` before
the text that answers it (its model card; the folder's ``config_sentence_transformers.json``
names them as prompts). Without them its cosines are flatter and rank worse, so every place
that embeds text with it adds them: questions (and FAQ entries, embedded by their question:
question-to-question matching is symmetric, and e5 wants ``"query: "`` on both sides there)
with :attr:`Prefixes.query`, passages and their sentences with :attr:`Prefixes.passage`.
all-MiniLM-L6-v2 (the English encoder) takes the text as it is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from components.encoders.multilingual import ASSEMBLED_MARK

logger = logging.getLogger(__name__)

E5_QUERY = "query: "
E5_PASSAGE = "passage: "


@dataclass(frozen=True)
class Prefixes:
    """Text put before a question (``query``) and before a passage (``passage``)."""

    query: str = ""
    passage: str = ""

    @property
    def tag(self) -> str:
        """A short name for index fingerprints: ``e5`` or ``plain``."""
        return "e5" if self.query or self.passage else "plain"

    def unit(self, text: str, question: bool) -> str:
        """``text`` with the prefix of a question (``question``) or of a passage."""
        return (self.query if question else self.passage) + text


NONE = Prefixes()
E5 = Prefixes(query=E5_QUERY, passage=E5_PASSAGE)


@lru_cache(maxsize=32)
def _prefixes(folder: str) -> Prefixes:
    from components.model_prep import is_e5

    return E5 if is_e5(folder) else NONE


def prefixes_for(folder: str | Path | None) -> Prefixes:
    """The prefixes the encoder in ``folder`` wants (e5: ``query: `` / ``passage: ``)."""
    return _prefixes(str(folder)) if folder else NONE


@dataclass(frozen=True)
class ChineseCalibration:
    """How a Chinese encoder's cosines are weighed: fusion and relevance gate of Chinese passages.

    Attributes:
        passage_dense_weight: Weight of the cosine in the fused score of a Chinese passage (BM25
            takes the rest; :class:`~knowledge.fusion.HybridRanker`).
        dense_scale: How that cosine enters the fusion (``cosine`` or ``minmax``).
        gate_dense_share: Share of the cosine in the relevance gate (the lexical support takes
            the rest): the default of ``kefu.knowledge.zh_dense_share``.
        min_relevance: The gate's threshold: the default of ``kefu.knowledge.min_zh_relevance``.
    """

    passage_dense_weight: float
    dense_scale: str
    gate_dense_share: float
    min_relevance: float


#: How the e5 calibrations below were chosen (each for its own encoder, same procedure): the
#: Chinese half of the shop index (knowledge/docs/shop/*.zh.md) and the shop's first Chinese
#: question set with its holdout (benchmarks/data/shop_qa_zh.jsonl + shop_qa_zh_holdout.jsonl,
#: 60 answerable + 22 unanswerable, pooled; shop_qa_zh_test.jsonl was only measured after):
#:
#: * fusion: with min-max scaled cosines, a cosine weight of 0.3–0.7 (tuned) or 0.5–0.8 (base)
#:   puts the right document first for 55–56 of the 60 answerable questions; raw cosines give
#:   the base model 50–53 at any weight (BM25 decides) and the tuned one 55 only at 0.8–0.9. 0.5
#:   lies on both plateaus.
#: * gate: cosine shares 0.8–1.0 in steps of 0.05, thresholds in steps of 0.0025: 0.85–0.95
#:   are within one question of each other; 0.9 keeps a tenth of lexical support, as before. The
#:   threshold is the middle of the band where correct source ≥ 0.80 and correct refusals ≥ 0.90
#:   (pooled): tuned 0.770–0.780, base 0.805–0.815. It is narrow because the cosines are
#:   compressed (question–passage cosines, 5th to 95th percentile: tuned 0.67–0.85, base
#:   0.81–0.90; the former Chinese MiniLM 0.09–0.60), and each encoder needs its own: the
#:   tuned threshold on the base model refuses only 12 of 32 unanswerable questions, the base
#:   threshold on the tuned model answers 45 of 80 right.
#:
#: Re-derive when the encoder changes (a new delta): docs/knowledge-base.md says how.
#: multilingual-e5-small with Kefu's delta (``kefu-encoder.json`` names its ``delta_sha256``).
E5_TUNED_ZH = ChineseCalibration(
    passage_dense_weight=0.5, dense_scale="minmax", gate_dense_share=0.9, min_relevance=0.775
)
#: The delta :data:`E5_TUNED_ZH` was chosen with (another one logs a warning: re-derive).
E5_TUNED_DELTA = "3e3c6c3a0654ce7023d348ab2dd238d22718941bfa07e96fa98ed0f5d261c259"
#: multilingual-e5-small as released (the untuned fallback, or any e5 folder without a delta).
E5_BASE_ZH = ChineseCalibration(
    passage_dense_weight=0.5, dense_scale="minmax", gate_dense_share=0.9, min_relevance=0.81
)
#: Any other Chinese encoder (a MiniLM-like folder): the values chosen for Kefu's former Chinese
#: MiniLM on the first Chinese question set (fusion 0.7 cosine + 0.3 BM25; gate 0.6 cosine + 0.4
#: support ≥ 0.4). A different encoder needs its own.
PLAIN_ZH = ChineseCalibration(
    passage_dense_weight=0.7, dense_scale="cosine", gate_dense_share=0.6, min_relevance=0.4
)


def _delta(folder: Path) -> str | None:
    """The ``delta_sha256`` an assembled Kefu encoder folder records, if any."""
    try:
        info = json.loads((folder / ASSEMBLED_MARK).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return info.get("delta_sha256") if isinstance(info, dict) else None


@lru_cache(maxsize=32)
def _calibration(folder: str) -> ChineseCalibration:
    if _prefixes(folder) is not E5:
        return PLAIN_ZH
    delta = _delta(Path(folder))
    if delta is None:
        return E5_BASE_ZH
    if delta != E5_TUNED_DELTA:
        logger.warning(
            "knowledge.uncalibrated_encoder delta=%s calibrated=%s", delta[:12], E5_TUNED_DELTA[:12]
        )
    return E5_TUNED_ZH


def chinese_calibration(folder: str | Path | None) -> ChineseCalibration:
    """The calibration of the Chinese encoder in ``folder``.

    Kefu's tuned e5 (a folder whose ``kefu-encoder.json`` records a delta), e5 as released, or
    any other encoder (:data:`PLAIN_ZH`).
    """
    return _calibration(str(folder)) if folder else PLAIN_ZH
