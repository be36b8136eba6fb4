"""gunicorn's gthread worker, with deadlines on reading each request (posterr/client_deadlines.py):
every connection's socket is a DeadlineSocket; each time a connection is handed to a thread, its next
request's headers must arrive within POSTERR_HEADER_TIMEOUT, and once they are in, its body within
POSTERR_BODY_TIMEOUT. gunicorn has neither: past its 5 s wait for a connection's first byte, a thread
reads for as long as the client sends. The worker class of posterr/gunicorn_conf.py."""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker

from posterr.client_deadlines import DeadlineSocket
from posterr.config import Settings


class Worker(ThreadWorker):
    header_timeout = body_timeout = 5.0

    def init_process(self):
        settings = Settings.from_env()  # already checked by the master (gunicorn_conf.py)
        self.header_timeout, self.body_timeout = settings.header_timeout, settings.body_timeout
        super().init_process()  # runs the worker's loop

    def enqueue_req(self, conn):
        # Called on the main thread before a thread serves the connection: a new one (its parser,
        # made from conn.sock on the thread, then reads through the DeadlineSocket), a kept-alive
        # one that became readable, or one deferred while it sent nothing.
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket(conn.sock)
        conn.sock.expect_headers(self.header_timeout)
        super().enqueue_req(conn)

    def handle_request(self, req, conn):
        conn.sock.expect_body(self.body_timeout, req)
        try:
            return super().handle_request(req, conn)
        finally:
            conn.sock.done()
