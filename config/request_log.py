"""One log line per request: method, path, status and duration (what a production log needs)."""

import logging
import time

logger = logging.getLogger("atlas.requests")


class RequestLogMiddleware:
    """First in MIDDLEWARE, so the duration covers everything the app does for the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = (time.perf_counter() - started) * 1000
        # The path without its query string: search terms and tokens stay out of the logs.
        logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 1),
            },
        )
        return response
