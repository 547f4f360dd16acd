"""Deployment artefacts: Helm values overlay, cluster RBAC, jupyterhub_config.py, demo."""
