"""Model zoo: architectures by name (no weights are downloaded). See :func:`models.get`."""
