"""Per-API-key rate limits: requests per minute (a fixed one-minute window) and concurrent
streams (chat SSE). Limits come from the key (CLI `keys limits`) or the catalog's
`rate_limits` defaults; 0 means unlimited. Counted in Redis when REDIS_URL is set (shared by
every process, one round trip per request), in this process otherwise."""
