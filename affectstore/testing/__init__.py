"""Builders for tests and demos: tiny datasets in each real layout (`affectstore.testing.datasets`)
and tiny random models saved to a folder (`affectstore.testing.models`)."""
