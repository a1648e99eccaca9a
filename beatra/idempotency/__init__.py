"""Idempotency-Key on mutating POSTs: the first request's response is stored for 24 h and
replayed to retries (same key, same body, same account and endpoint) without running the view
again; a different body is refused (422), a retry while the first still runs gets 409.

Any view whose `operation(..., idempotent=True)` marks it is covered by the app-level hooks in
`beatra.idempotency.hooks`; views need no code of their own."""
