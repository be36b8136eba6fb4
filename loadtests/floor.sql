-- The floor app's one statement (loadtests/floor.py): the 10 newest posts with their authors.
-- Index: posts_created_at_id_idx, users_pkey.
SELECT p.id, p.user_id, u.username, p.type, p.content, p.created_at
FROM posts p
JOIN users u ON u.id = p.user_id
ORDER BY p.created_at DESC, p.id DESC
LIMIT 10
