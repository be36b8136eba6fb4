-- name: ping :one
-- Whether the server answers a query at all (readiness; a replica's pool check).
-- Index: none needed (no table is read).
SELECT 1 AS ok;
