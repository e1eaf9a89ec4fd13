"""The Chinese encoder delta's adaptation (runtime assembly: :mod:`components.encoders.delta`)."""
