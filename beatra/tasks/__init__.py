"""Asynchronous tasks: the task row (source of truth), its state machine, billing, the Dramatiq
runtime (Redis workers or the embedded in-process runner), the sweeper, and the task service."""
