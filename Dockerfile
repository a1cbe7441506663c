# The meander image: one image for the API and every component; the command picks which.
#   docker build -t meander .  &&  docker run --rm meander config check
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group meander

WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . && rm -rf build ./*.egg-info

USER meander

# docker-compose.yml relies on this: a service's `command` is the meander subcommand.
ENTRYPOINT ["meander"]
CMD ["--help"]
