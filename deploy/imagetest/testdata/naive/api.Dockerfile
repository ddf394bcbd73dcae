# A naive build of examples/todo/api, the way a beginner writes it (a test fixture of deploy/imagetest, never used to
# ship): one stage on Debian with the build tools, the whole directory copied first, pip, headers, the test runner and
# the runtime installed on top.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y build-essential git curl
WORKDIR /app
COPY . .
RUN apt-get install -y python3 python3-pip python3-dev libpq-dev python3-flask gunicorn python3-psycopg2 python3-pytest
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "app:app"]
