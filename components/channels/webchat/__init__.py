"""The web chat page served by :mod:`components.channels.socketio` (HTML, CSS, JS)."""
