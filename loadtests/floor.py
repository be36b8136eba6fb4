"""The floor of Posterr's own stack, a yardstick for `make bench`: Bottle under gunicorn gthread with
the app's workers and threads, doing as little as a request can. `/hello` does no work at all;
`/feed` reads the 10 newest posts with their authors (loadtests/floor.sql) in one prepared statement
over the benchmark's database and encodes the rows with orjson. No request id, log line, metrics,
rate limit or cache: what Posterr costs beyond these two rows is its own overhead.

    FLOOR_DATABASE_URL=postgresql://… gunicorn -k gthread -w 2 --threads 4 loadtests.floor:application
"""

import os
from pathlib import Path

import bottle
import orjson
from psycopg_pool import ConnectionPool

FEED = (Path(__file__).with_name("floor.sql")).read_text(encoding="utf-8")
application = bottle.Bottle()
# gunicorn imports this module in each worker, after the fork (no --preload), so the pool is the worker's.
pool = ConnectionPool(os.environ["FLOOR_DATABASE_URL"], min_size=4, max_size=4, kwargs={"prepare_threshold": 0},
                      open=True)


@application.get("/hello")
def hello():
    bottle.response.content_type = "application/json"
    return b'{"status":"ok"}'


@application.get("/feed")
def feed():
    with pool.connection() as conn:
        cursor = conn.execute(FEED)
        columns = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    bottle.response.content_type = "application/json"
    return orjson.dumps([dict(zip(columns, row)) for row in rows])
