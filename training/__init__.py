"""Training and data-building commands: how every shipped model and curated list was made.

Nothing here runs inside Rasa or the action server, and no runtime module imports this
package (``tests/test_architecture.py`` checks it): the dependency goes one way only,
``training`` → ``components``/``knowledge``. The results are committed where the runtime reads
them (``components/*/artifacts/``, ``components/safety/lexicons/``).

* :mod:`training.llm` — LoRA fine-tuning of the bundled LLM (data, train, evaluate, merge,
  conversation export).
* :mod:`training.privacy` — the PII name/address tagger's data builder and trainer.
* :mod:`training.safety` — the Chinese offensive-content classifier's trainer.
* :mod:`training.encoders` — the Chinese encoder delta's adaptation.
* :mod:`training.lexicon_curation` — the curated default lexicons.

One command line: ``python -m training <command> [...]`` (``python -m training --help``).
"""
