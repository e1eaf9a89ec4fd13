"""Fine-tuning the bundled LLM for Kefu's two jobs: rephrasing replies and grounded answers.

* :mod:`~training.llm.config` — the one block of hyper-parameters.
* :mod:`~training.llm.data` — training-data builders (rephrase, grounded).
* :mod:`~training.llm.export` — the masked tracker store as chat-format SFT data.
* :mod:`~training.llm.train` — LoRA with the Hugging Face ``Trainer`` on the CPU,
  evaluation before/after, merge and export.
* :mod:`~training.llm.evaluate` — task metrics of a model on the held-back examples.
* :mod:`~training.llm.cli` — the ``finetune`` command.

Where the shipped adapter lives and how a backend applies it is runtime code:
:mod:`components.llm.adapter`.

Command line: ``python -m training finetune {data,train,evaluate,merge,export}``.
No module here imports Rasa.
"""
