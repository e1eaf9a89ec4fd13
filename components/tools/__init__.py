"""Deployment tools, not imported at run time: the secrets file (``secrets``)."""
