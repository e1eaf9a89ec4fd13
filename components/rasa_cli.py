"""``rasa`` as Kefu runs it: ``python -m components.rasa_cli train ...`` (Rasa's own arguments).

Only the warnings that are noise are hidden. Python builds its warning filters from ``-W`` and
``PYTHONWARNINGS`` at start-up, but importing Rasa overrides them: Sanic 21.12 calls
``filterwarnings("once", category=DeprecationWarning)`` when it is imported, which puts it in
front, so every third-party deprecation (pkg_resources, distutils under sanic_cors, importlib's
``load_module`` ...) is printed once whatever the environment says. And Rasa 3.6's recipe
validator knows entity extractors only by class (its ``TRAINABLE_EXTRACTORS``: Mitie, CRF, DIET),
so it warns that nothing is trained on the entity examples although
``TransformerIntentEntityClassifier`` is. :func:`prepare_warnings` puts the start-up options back
in front and adds that warning to Rasa's own list of expected warnings (hidden unless
``--debug``); every other warning still shows. Rasa's validator also warns that a response "is
not used in any story or rule" when a custom action sends it (``response="utter_..."``) or a
form asks with it (``utter_ask_<slot>``): those uses are found in ``actions/`` and the domains'
forms and registered the same way, so a response no flow uses is still reported.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

from components.paths import PROJECT_ROOT

#: Rasa warnings that are false for Kefu's components: (category, message regular expression).
FALSE_RASA_WARNINGS: list[tuple[type[Warning], str]] = [
    (
        UserWarning,
        "You have defined training data consisting of entity examples, but your NLU "
        "configuration does not include an entity extractor",
    ),
]


def prepare_warnings() -> None:
    """Put the ``-W``/``PYTHONWARNINGS`` filters back in front; register Rasa's false warnings.

    Call it after Rasa is imported and before Rasa's ``main()`` (which installs the expected
    warnings' filters), never at import time.
    """
    import rasa.utils.common

    # the interpreter's own parser of -W options; later options win, as at start-up
    warnings._processoptions(list(sys.warnoptions))
    expected = rasa.utils.common.EXPECTED_WARNINGS
    unused = [
        (UserWarning, re.escape(f"The utterance '{name}' is not used in any story or rule."))
        for name in responses_used_outside_stories()
    ]
    expected.extend(w for w in [*FALSE_RASA_WARNINGS, *unused] if w not in expected)


def responses_used_outside_stories(root: Path = PROJECT_ROOT) -> list[str]:
    """Responses that custom actions send or forms ask with, which stories never name.

    Args:
        root: The project folder (its ``actions/`` and ``rasa_project/*/domain.yml``).

    Returns:
        The response names, sorted.
    """
    import yaml

    names: set[str] = set()
    for path in (root / "actions").rglob("*.py"):
        names |= set(re.findall(r"[\"'](utter_[a-z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    for domain in (root / "rasa_project").glob("*/domain.yml"):
        content = yaml.safe_load(domain.read_text(encoding="utf-8")) or {}
        for form in (content.get("forms") or {}).values():
            names |= {f"utter_ask_{slot}" for slot in (form or {}).get("required_slots") or []}
    return sorted(names)


def main() -> None:
    """Run Rasa's command line on this process's arguments, with :func:`prepare_warnings`."""
    from rasa.__main__ import main as rasa_main  # imports Sanic, and so its filter, first

    prepare_warnings()
    rasa_main()


if __name__ == "__main__":
    main()
