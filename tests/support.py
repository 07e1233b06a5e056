"""Helpers for tests that need a running server (browser tests)."""

from contextlib import contextmanager

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core import signals
from django.core.servers.basehttp import WSGIServer
from django.db import close_old_connections, connections
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler


class _SingleThreadedLiveServer(LiveServerThread):
    # One request at a time: every request shares the test's database connection.
    server_class = WSGIServer

    def _create_server(self, connections_override=None):
        # run() already gave this thread the shared connection; WSGIServer takes no override.
        return self.server_class((self.host, self.port), QuietWSGIRequestHandler, allow_reuse_address=False)


@contextmanager
def live_server_in_test_transaction():
    """Serve the app on a free port, inside the test's own transaction.

    Unlike pytest-django's `live_server` (which needs a transactional test, and so would
    truncate the 35k communes after each test), the server thread here reuses the test's
    connection: it sees the objects the test created, and the rollback after the test
    leaves the territories in place.
    """
    connection = connections["default"]
    connection.ensure_connection()
    connection.inc_thread_sharing()
    # A request must not close the shared connection when it finishes.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # Static files through the finders (like runserver): no collectstatic needed for Leaflet.
    server = _SingleThreadedLiveServer(
        "127.0.0.1", static_handler=StaticFilesHandler, connections_override={"default": connection}
    )
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.terminate()
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
        connection.dec_thread_sharing()


def in_own_connection(function, *args):
    """Run `function` in a thread of its own: its own connection, autocommit, closed at the end.

    Its writes are committed (the test's own connection, in its rolled-back transaction, reads
    them), and whatever happens at a commit happens: database triggers, `on_commit` hooks.
    """
    import threading

    outcome: dict = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # handed back to the caller
            outcome["error"] = error
        finally:
            connections["default"].close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
