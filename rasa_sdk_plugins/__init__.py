"""rasa-sdk's plugin package: Kefu's extensions of the action server.

rasa-sdk imports a top-level package of this name when the action server starts and calls
:func:`init_hooks`; the hook then attaches Kefu's listeners to the Sanic app
(:mod:`actions.server_extensions`).
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("rasa_sdk")


class KefuActionServerPlugin:
    """Attaches Kefu's start-up listeners to the action server's Sanic app."""

    @hookimpl
    def attach_sanic_app_extensions(self, app: object) -> None:
        """Register Kefu's listeners on ``app`` (see :mod:`actions.server_extensions`)."""
        from actions.server_extensions import attach

        attach(app)


def init_hooks(manager: pluggy.PluginManager) -> None:
    """Register Kefu's hook implementations with rasa-sdk's plugin manager."""
    manager.register(KefuActionServerPlugin())
