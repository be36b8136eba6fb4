-- migrate:up
-- Both follow lists of every user, as one relation: list 'followers' holds, for each owner, the users
-- who follow them; list 'following', the users they follow. followed_at is when the follow was made.
-- One page query serves both lists (follow_list_page in db/queries/follows.sql): the planner pushes
-- its conditions into each branch, so each list walks its own index (follows_followee_created_idx,
-- follows_follower_created_idx), and in the one generic plan the branch the other list names is
-- skipped by a one-time filter (tests/integration/test_query_plans.py pins the plan).
CREATE VIEW follow_lists (list, owner_id, member_id, followed_at) AS
    SELECT 'followers'::text, followee_id, follower_id, created_at FROM follows
    UNION ALL
    SELECT 'following'::text, follower_id, followee_id, created_at FROM follows;

-- migrate:down
DROP VIEW follow_lists;
