"""gunicorn settings for the KDC or a relying service run by gunicorn itself, e.g.

    gunicorn -c deploy/gunicorn.conf.py --bind 0.0.0.0:8750 'kdc.app:create_app()'

`tally kdc serve` and `tally service serve` run gunicorn in-process with these
same values: each line below names the setting kdc/serve.py defines once.
Command-line flags (--workers, --bind, ...) override this file.  Settings of
the KDC itself come from the tallystick configuration file (TALLY_CONFIG).
"""

from kdc import serve as tally

bind = ["127.0.0.1:8750"]
# Processes x threads: a worker per core is a good start; issuance is CPU-bound (X25519, AEAD), Redis waits are not.
workers = 2
threads = 4
# gthread that stops listening as soon as SIGTERM arrives, so a proxy moves on to another replica at once.
worker_class = tally.WORKER_CLASS
preload_app = False  # the app is built in each worker, after fork: one Redis connection pool per process
timeout = tally.TIMEOUT_S  # a worker silent this long is stuck (Redis waits are bounded far below it)
graceful_timeout = tally.GRACEFUL_TIMEOUT_S  # after SIGTERM, requests in flight get this long to finish
keepalive = tally.KEEPALIVE_S
limit_request_line = tally.LIMIT_REQUEST_LINE
limit_request_fields = tally.LIMIT_REQUEST_FIELDS
limit_request_field_size = tally.LIMIT_REQUEST_FIELD_SIZE
# JSON lines: one object per request on stdout (method, path, status, duration, request id; never the query
# string), and the server's own lines on stderr.
accesslog = "-"
logger_class = tally.LOGGER_CLASS
errorlog = "-"
loglevel = "info"
proc_name = "tally"
control_socket_disable = True  # gunicorn >= 25.1: its control socket path is per user, so a KDC and a service clash
# PROMETHEUS_MULTIPROC_DIR: made private for the run when unset, emptied at start, removed at exit; a dead
# worker is marked with prometheus_client.multiprocess.mark_process_dead so /metrics adds up the live ones.
on_starting = tally.on_starting
child_exit = tally.child_exit
on_exit = tally.on_exit
