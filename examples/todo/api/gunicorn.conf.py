# gunicorn settings for the todo API inside its container.
bind = "0.0.0.0:8000"
workers = 2
threads = 4
timeout = 30
# Keep-alive connections from the sidecar stay open longer than the sidecar keeps them idle (drawbridge's
# upstream idle_conn, 90 s by default): the client must be the side that closes an idle connection. With
# gunicorn's default of 2 s, a request sent on a pooled connection just as gunicorn closed it read EOF and the
# sidecar answered 502 (seen under the multinode test's load, when both of its attempts picked such a one).
keepalive = 120
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
worker_tmp_dir = "/tmp"  # the root file system is read-only
