# gunicorn settings for the todo API inside its container.
bind = "0.0.0.0:8000"
workers = 2
threads = 4
timeout = 30
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
worker_tmp_dir = "/tmp"  # the root file system is read-only
