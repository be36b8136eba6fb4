"""Domain errors. Each carries its HTTP status; posterr/edge/problems.py renders them as problem+json."""

from __future__ import annotations


class ConfigError(Exception):
    """The environment is incomplete or wrong; raised at start-up with the fix in the message."""


class DuplicateRow(Exception):
    """A write broke a unique constraint (posterr.db raises it for the driver's error): the service
    that wrote says what that means, as a Conflict."""

    def __init__(self, constraint: str | None):
        super().__init__(f"duplicate row (constraint {constraint})")
        self.constraint = constraint


class ApiError(Exception):
    status = 500
    title = "Internal Server Error"
    type_slug = "internal-server-error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}

    def extra_members(self) -> dict:
        return {}


class BadRequest(ApiError):
    """The body could not be read as a JSON object (malformed JSON, a broken chunked body)."""
    status, title, type_slug = 400, "Bad Request", "bad-request"


REALM = 'Bearer realm="posterr"'


class InvalidAuthRequest(BadRequest):
    """RFC 6750's invalid_request: a scheme other than Bearer, two Authorization headers, or a
    token outside the header."""
    type_slug = "invalid-auth-request"

    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": f'{REALM}, error="invalid_request"'})


class Unauthorized(ApiError):
    """No token on a call that acts for a user (RFC 6750: no error code), or a failed login."""
    status, title, type_slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str):
        super().__init__(detail, headers={"WWW-Authenticate": REALM})


class InvalidToken(Unauthorized):
    """An unknown, malformed, revoked or expired token (RFC 6750's invalid_token)."""
    type_slug = "invalid-token"

    def __init__(self, detail: str = "the token is unknown, revoked or expired"):
        super().__init__(detail)
        self.headers["WWW-Authenticate"] = f'{REALM}, error="invalid_token"'


class Forbidden(ApiError):
    """A token acting for another user than its own."""
    status, title, type_slug = 403, "Forbidden", "forbidden"


class InsufficientScope(Forbidden):
    type_slug = "insufficient-scope"

    def __init__(self, scope: str):
        super().__init__(f"the token lacks the {scope} scope",
                         headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'})


class NotFound(ApiError):
    """No such user or post, or no such path."""
    status, title, type_slug = 404, "Not Found", "not-found"


class MethodNotAllowed(ApiError):
    status, title, type_slug = 405, "Method Not Allowed", "method-not-allowed"

    def __init__(self, detail: str, *, allowed: str):
        super().__init__(detail, headers={"Allow": allowed})


class RequestTimeout(ApiError):
    """The body did not arrive within POSTERR_BODY_TIMEOUT (posterr/client_deadlines.py). gunicorn answers
    it with `Connection: close`: the rest of the body is unread."""
    status, title, type_slug = 408, "Request Timeout", "request-timeout"


class Conflict(ApiError):
    """The request clashes with what is stored: a taken username, a second repost of one post, an
    Idempotency-Key whose first request is still running."""
    status, title, type_slug = 409, "Conflict", "conflict"


class PayloadTooLarge(ApiError):
    """A body over http.MAX_BODY bytes, announced or streamed."""
    status, title, type_slug = 413, "Payload Too Large", "payload-too-large"


class UnsupportedMediaType(ApiError):
    """A body not sent as application/json: a browser may send text/plain, a form or multipart from
    any page without asking first (no CORS preflight), so only JSON is taken. The answer says what
    is: `Accept` (RFC 9110, 15.5.16) and `Accept-Post` (the media types a POST takes)."""
    status, title, type_slug = 415, "Unsupported Media Type", "unsupported-media-type"

    def __init__(self, expected: str):
        super().__init__(f"the request body must be sent with Content-Type: {expected}",
                         headers={"Accept": expected, "Accept-Post": expected})


class ValidationFailed(ApiError):
    status, title, type_slug = 422, "Unprocessable Content", "validation-failed"

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))

    @classmethod
    def of(cls, field: str, message: str) -> ValidationFailed:
        return cls([{"field": field, "message": message}])

    def extra_members(self) -> dict:
        return {"errors": self.errors}


class TooManyRequests(ApiError):
    status, title, type_slug = 429, "Too Many Requests", "too-many-requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class DailyLimitReached(TooManyRequests):
    type_slug = "daily-post-limit"


class ServiceUnavailable(ApiError):
    status, title, type_slug = 503, "Service Unavailable", "service-unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class UnconfirmedCommit(ServiceUnavailable):
    """The primary committed a write, but no synchronous standby confirmed it before the commit's
    wait was cancelled: a fail-over now could lose it, so it is not acknowledged. A retry with the
    same Idempotency-Key gets the write once."""

    def __init__(self):
        super().__init__("the write may or may not have been saved (no standby confirmed it in time); "
                         "retry it with the same Idempotency-Key", retry_after=2)


class DatabaseUnavailable(ServiceUnavailable):
    """PostgreSQL could not be reached or could not complete the request (not: it took too long).
    From a replica, the read is run again on the primary."""
