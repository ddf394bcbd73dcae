# A naive build of examples/todo/db, the way a beginner writes it (a test fixture of deploy/imagetest, never used to
# ship): one stage on Debian with the build tools, the whole directory copied first, PostgreSQL installed on top with
# everything it recommends.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y build-essential git curl
WORKDIR /app
COPY . .
RUN apt-get install -y postgresql
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
ENTRYPOINT ["sh", "/app/entrypoint.sh"]
