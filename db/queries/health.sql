-- name: ping :one
-- The server that answered, as its clients reach it (no address over a Unix socket): behind a
-- multi-host DATABASE_URL, the primary the app writes to now.
-- Index: none needed (no table is read).
SELECT 1 AS ok, host(inet_server_addr()) AS host, inet_server_port() AS port;
