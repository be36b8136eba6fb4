-- The posterr role and database for a new PostgreSQL server (docker-compose mounts this file into
-- /docker-entrypoint-initdb.d). Migrations (dbmate) then create the tables; pg_trgm is a trusted
-- extension, so the database owner may create it without being a superuser.
CREATE ROLE posterr WITH LOGIN PASSWORD 'posterr';
CREATE DATABASE posterr OWNER posterr ENCODING 'UTF8' TEMPLATE template0;
