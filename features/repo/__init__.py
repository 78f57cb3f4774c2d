"""The Feast feature repo of twinops (feature_store.yaml + definitions.py)."""
