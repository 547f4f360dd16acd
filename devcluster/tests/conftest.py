"""The stand-in's own tests use its pytest plugin, as the product's tests do."""

pytest_plugins = ["devcluster.testing"]
