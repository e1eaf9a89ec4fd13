"""The offensive-content classifier's trainer (:mod:`training.safety.offensive_training`)."""

from __future__ import annotations

import numpy as np

from components.safety.offensive import OffensiveClassifier
from components.text import fold_for_model
from training.safety.offensive_training import fit, to_classifier


def test_train_persist_load_gives_the_same_scores(tmp_path):
    texts = ["你真是个废物垃圾", "滚吧你这个蠢货", "今天天气不错", "请问怎么退货"] * 5
    labels = [1, 1, 0, 0] * 5
    hashing, tfidf, model = fit(texts, labels, c=4.0)
    seen = set(hashing.transform([fold_for_model(t) for t in texts]).indices)
    classifier = to_classifier(hashing, tfidf, model, 0.5, seen)
    expected = model.predict_proba(tfidf.transform(hashing.transform(texts)))[:, 1]
    assert np.allclose(classifier.scores(texts), expected, atol=1e-5)
    path = tmp_path / "m.npz"
    classifier.save(path)
    loaded = OffensiveClassifier.load(path)
    assert np.allclose(loaded.scores(texts), expected, atol=2e-3)  # float16 on disk
    assert loaded.threshold == 0.5
