"""A learned offensive-content classifier for Chinese text, beside the lexicon.

The curated lexicon catches vocabulary (few false positives, but 10 % of COLD's offensive
comments: most are implicit bias, not swear words). This classifier reads the rest: character
1–3-grams (hashed into 2^20 buckets, sub-linear TF × IDF, L2-normalised) and a logistic
regression trained on COLD's train split (:mod:`training.safety.offensive_training`). It
scores Chinese text only — no labelled English offensive-language set is available offline, so
English stays with the lexicon — and costs well under a millisecond per message.

The model is one ``.npz`` file (the buckets seen in training: their IDF and weight, the bias,
the decision threshold) committed in ``artifacts/`` with its checksum and model card. Engine
only: no ``rasa``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from components.errors import ModelNotFoundError
from components.text import CJK, fold_for_model

logger = logging.getLogger(__name__)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MODEL_FILE = ARTIFACTS / "offensive-zh.npz"
CHECKSUM_FILE = ARTIFACTS / "offensive-zh.sha256"
N_FEATURES = 1 << 20
NGRAMS = (1, 3)


def vectorizer():  # noqa: ANN201 - a scikit-learn HashingVectorizer
    """The stateless feature hashing shared by training and inference."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        analyzer="char",
        ngram_range=NGRAMS,
        n_features=N_FEATURES,
        alternate_sign=False,
        norm=None,
        lowercase=True,
    )


class OffensiveClassifier:
    """Probability that a Chinese text is offensive.

    Args:
        buckets: Hash buckets seen in training (sorted).
        idf: IDF of each bucket.
        weights: Logistic-regression weight of each bucket.
        bias: Logistic-regression intercept.
        threshold: Probability at and above which a text counts as offensive.
        unseen_idf: IDF of buckets never seen in training (they weigh in the L2 norm).
    """

    def __init__(  # noqa: PLR0913
        self,
        buckets,  # noqa: ANN001 - numpy arrays
        idf,  # noqa: ANN001
        weights,  # noqa: ANN001
        bias: float,
        threshold: float,
        unseen_idf: float,
    ) -> None:
        import numpy as np

        self.threshold = float(threshold)
        self.bias = float(bias)
        self.unseen_idf = float(unseen_idf)
        self._idf = np.full(N_FEATURES, self.unseen_idf, dtype=np.float32)
        self._weights = np.zeros(N_FEATURES, dtype=np.float32)
        self._idf[buckets] = idf
        self._weights[buckets] = weights
        self._vectorizer = vectorizer()

    @staticmethod
    def applies(text: str) -> bool:
        """Whether the classifier scores ``text`` (it has Chinese characters)."""
        return bool(CJK.search(text))

    def scores(self, texts: Sequence[str]) -> list[float | None]:
        """Offensive probability per text; ``None`` for texts without Chinese characters."""
        import numpy as np

        todo = [i for i, t in enumerate(texts) if self.applies(t)]
        out: list[float | None] = [None] * len(texts)
        if not todo:
            return out
        from sklearn.preprocessing import normalize

        counts = self._vectorizer.transform([fold_for_model(texts[i]) for i in todo]).tocsr()
        counts.data = (1.0 + np.log(counts.data)) * self._idf[counts.indices]
        logits = normalize(counts) @ self._weights + self.bias
        probs = 1.0 / (1.0 + np.exp(-logits))
        for i, p in zip(todo, probs.tolist(), strict=True):
            out[i] = p
        return out

    def save(self, path: Path) -> None:
        """Write the model as one compressed ``.npz`` (only the buckets it uses)."""
        import numpy as np

        used = np.flatnonzero(self._weights).astype(np.int32)  # the buckets seen in training
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            buckets=used,
            idf=self._idf[used].astype(np.float16),
            weights=self._weights[used].astype(np.float16),
            bias=np.array([self.bias]),
            threshold=np.array([self.threshold]),
            unseen_idf=np.array([self.unseen_idf]),
            ngrams=np.array(NGRAMS),
        )

    @classmethod
    def load(
        cls, path: Path = MODEL_FILE, checksum_file: Path | None = None
    ) -> OffensiveClassifier:
        """Read a model written by :meth:`save` (checked against ``checksum_file`` if given).

        Raises:
            ModelNotFoundError: when the file is missing, altered or not such a model.
        """
        import numpy as np

        hint = "restore it from git or rebuild it: python -m training offensive"
        if not path.is_file():
            raise ModelNotFoundError(
                f"no offensive classifier at {path}", hint=hint, path=str(path)
            )
        if checksum_file is not None:
            from components.checksums import expected_checksum, sha256

            if sha256(path) != expected_checksum(checksum_file):
                raise ModelNotFoundError(
                    f"{path.name} does not match {checksum_file.name}", hint=hint, path=str(path)
                )
        try:
            with np.load(path) as data:
                if tuple(data["ngrams"].tolist()) != NGRAMS:
                    raise ValueError("n-gram range")
                return cls(
                    data["buckets"],
                    data["idf"].astype(np.float32),
                    data["weights"].astype(np.float32),
                    float(data["bias"][0]),
                    float(data["threshold"][0]),
                    float(data["unseen_idf"][0]),
                )
        except (KeyError, ValueError, OSError) as exc:
            raise ModelNotFoundError(
                f"{path.name} is not an offensive classifier ({type(exc).__name__})",
                hint=hint,
                path=str(path),
            ) from exc


def default_classifier() -> OffensiveClassifier:
    """The committed classifier, checked against its committed checksum."""
    return OffensiveClassifier.load(MODEL_FILE, CHECKSUM_FILE)
