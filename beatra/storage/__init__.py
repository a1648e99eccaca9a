"""Artifacts: content-addressed media owned by one account (model, stores, sniffing, probing)."""
