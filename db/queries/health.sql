-- name: ping :one
-- Index: none needed (no table is read).
SELECT 1 AS ok;
