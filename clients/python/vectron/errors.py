"""Errors raised by the Vectron client.

Every non-2xx answer from the coordinator carries
{"error": {"code": "...", "message": "..."}} (docs/openapi.yaml lists the
codes).  The exception keeps the HTTP status, the stable code, the message
and the request id, so a failure can be traced in the coordinator's log.
"""


class VectronError(Exception):
    """A request the coordinator refused or could not answer."""

    def __init__(self, status, code, message, request_id=None, retry_after=None):
        super().__init__("%s (HTTP %s): %s" % (code, status, message))
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after


class ConnectionFailed(VectronError):
    """The coordinator could not be reached or hung up."""

    def __init__(self, message):
        super().__init__(0, "CONNECTION_FAILED", message)


class BadRequest(VectronError):
    """400: invalid JSON, argument or filter."""


class Unauthorized(VectronError):
    """401: missing, expired, forged or revoked credentials."""


class Forbidden(VectronError):
    """403: not allowed for this role or key scope, or a quota is reached."""


class NotFound(VectronError):
    """404: no such collection, node or endpoint."""


class Conflict(VectronError):
    """409: the name exists, or the operation conflicts with the cluster state."""


class PayloadTooLarge(VectronError):
    """413: the body passed the coordinator's max_body_bytes."""


class RateLimited(VectronError):
    """429: retry after `retry_after` seconds."""


class Unavailable(VectronError):
    """502/503: a shard, node or the metadata database did not answer."""


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
              409: Conflict, 413: PayloadTooLarge, 429: RateLimited,
              502: Unavailable, 503: Unavailable, 504: Unavailable}


def error_from_response(status, body, request_id=None, retry_after=None):
    """The exception for an error response."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        err = {"code": "HTTP_%d" % status, "message": "unexpected response"}
    cls = _BY_STATUS.get(status, VectronError)
    try:
        retry_after = float(retry_after) if retry_after is not None else None
    except ValueError:
        retry_after = None
    return cls(status, err.get("code", "HTTP_%d" % status), err.get("message", ""), request_id, retry_after)
