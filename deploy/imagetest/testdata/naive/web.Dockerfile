# A naive build of examples/todo/web, the way a beginner writes it (a test fixture of deploy/imagetest, never used to
# ship): one stage on Debian with the build tools, the whole directory copied first, the bundler and a web server
# installed on top, the sources left in the image.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y build-essential git curl
WORKDIR /app
COPY . .
RUN apt-get install -y nodejs esbuild node-react node-react-dom nginx
RUN ./build.sh /var/www/html
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
