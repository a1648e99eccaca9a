"""Webhook callbacks: one endpoint per account, a transactional outbox row per finished task,
and a Dramatiq actor that POSTs the TaskEnvelope signed per the Standard Webhooks spec."""
