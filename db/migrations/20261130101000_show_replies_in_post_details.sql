-- migrate:up
-- A post as API v1.1 shows it also says which post it answers (reply_to: id, author, username)
-- and how many replies answer it. New columns at the end, so the view is replaced in place.
CREATE OR REPLACE VIEW post_details AS
SELECT p.id, p.user_id, u.username, p.type,
       coalesce(p.content, o.content) AS content,
       p.repost_id, p.repost_count, p.quote_count, p.created_at,
       o.id AS original_id, o.user_id AS original_user_id, ou.username AS original_username,
       o.type AS original_type, coalesce(o.content, oo.content) AS original_content,
       o.created_at AS original_created_at,
       p.reply_to_id, p.reply_count, rp.user_id AS reply_to_user_id, ru.username AS reply_to_username
FROM posts p
JOIN users u ON u.id = p.user_id
LEFT JOIN posts o ON o.id = p.repost_id
LEFT JOIN users ou ON ou.id = o.user_id
LEFT JOIN posts oo ON oo.id = o.repost_id
LEFT JOIN posts rp ON rp.id = p.reply_to_id
LEFT JOIN users ru ON ru.id = rp.user_id;

-- migrate:down
DROP VIEW post_details;
CREATE VIEW post_details AS
SELECT p.id, p.user_id, u.username, p.type,
       coalesce(p.content, o.content) AS content,
       p.repost_id, p.repost_count, p.quote_count, p.created_at,
       o.id AS original_id, o.user_id AS original_user_id, ou.username AS original_username,
       o.type AS original_type, coalesce(o.content, oo.content) AS original_content,
       o.created_at AS original_created_at
FROM posts p
JOIN users u ON u.id = p.user_id
LEFT JOIN posts o ON o.id = p.repost_id
LEFT JOIN users ou ON ou.id = o.user_id
LEFT JOIN posts oo ON oo.id = o.repost_id;
