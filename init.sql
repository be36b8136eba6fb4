-- The posterr role and database on a new PostgreSQL server. docker-compose.yml mounts this file into
-- /docker-entrypoint-initdb.d, where the postgres image runs it once, as the superuser, when its
-- data volume is empty. Migrations (dbmate, the `migrate` service) then create the tables; pg_trgm
-- is a trusted extension, so the database owner creates it without being a superuser.
--
-- The password suits a laptop only: in production the role comes from the platform's secrets.
\set ON_ERROR_STOP on

-- The app's role: owns its database, nothing more (no superuser, no role or database creation).
CREATE ROLE posterr WITH LOGIN PASSWORD 'posterr' NOSUPERUSER NOCREATEDB NOCREATEROLE;
-- A safety net for a client that dies inside a transaction (the app runs autocommit statements).
ALTER ROLE posterr SET idle_in_transaction_session_timeout = '60s';

CREATE DATABASE posterr OWNER posterr ENCODING 'UTF8' TEMPLATE template0;
-- Only its owner (and superusers) may connect to it.
REVOKE CONNECT, TEMPORARY ON DATABASE posterr FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE posterr TO posterr;
