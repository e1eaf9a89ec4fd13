"""The offensive-content classifier's trainer (runtime: :mod:`components.safety.offensive`)."""
