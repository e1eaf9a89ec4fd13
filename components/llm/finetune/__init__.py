"""Fine-tuning the bundled LLM for Kefu's two jobs: rephrasing replies and grounded answers.

* :mod:`~components.llm.finetune.config` — the one block of hyper-parameters.
* :mod:`~components.llm.finetune.data` — training-data builders (rephrase, grounded).
* :mod:`~components.llm.finetune.export` — the masked tracker store as chat-format SFT data.
* :mod:`~components.llm.finetune.train` — LoRA with the Hugging Face ``Trainer`` on the CPU,
  evaluation before/after, merge and export.
* :mod:`~components.llm.finetune.adapter` — where the shipped adapter lives and how a backend
  applies it.

Command line: ``python -m components.llm.finetune {data,train,evaluate,merge,export}``.
No module here imports Rasa.
"""
