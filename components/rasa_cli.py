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
``--debug``); every other warning still shows.
"""

from __future__ import annotations

import sys
import warnings

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
    expected.extend(w for w in FALSE_RASA_WARNINGS if w not in expected)


def main() -> None:
    """Run Rasa's command line on this process's arguments, with :func:`prepare_warnings`."""
    from rasa.__main__ import main as rasa_main  # imports Sanic, and so its filter, first

    prepare_warnings()
    rasa_main()


if __name__ == "__main__":
    main()
