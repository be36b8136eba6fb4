"""The HTTP edge around every route, one job per module: the request id (`request_id`), who the
client is (`clients`), CORS (`cors`), the per-client rate limit (`rate_limit`), errors as
problem+json (`problems`), and the plugin and error handlers that apply them all, log each request
and count it (`plugin`). What routes use to read requests and write answers is `posterr.http`."""
