# kvmgate container image: the capture worker and the FastCGI supervisor, run by
# scripts/stack.sh against an external PostgreSQL (DATABASE_URL). nginx runs in its
# own container (see docker-compose.yml) and talks FastCGI to port 9000.
#
#   docker build -t kvmgate .
#   docker run --shm-size=1g -e DATABASE_URL=postgresql://... -v kvmgate:/var/lib/kvmgate kvmgate

# ---- build -------------------------------------------------------------------
FROM debian:12-slim AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN make -j"$(nproc)" && ls -l bin/

# ---- runtime -----------------------------------------------------------------
FROM debian:12-slim
# Runtime libraries only; libfcgi-bin brings cgi-fcgi, which the health check uses
# to ask the FastCGI workers for /healthz directly.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libfcgi0ldbl libfcgi-bin libjson-c5 libpq5 libssl3 libcurl4 libwebsockets17 \
      libturbojpeg0 zlib1g libtesseract5 tesseract-ocr-eng bash curl procps ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 kvmgate \
 && useradd --system --uid 10001 --gid kvmgate --home-dir /var/lib/kvmgate \
      --no-create-home --shell /usr/sbin/nologin kvmgate \
 && install -d -o kvmgate -g kvmgate -m 0750 /var/lib/kvmgate

COPY --from=build /src/bin/kvmgate /src/bin/kvmgate-fcgi /src/bin/kvmgate-capture /usr/local/bin/
# stack.sh takes its directory's parent as the top: templates in nginx/, static/, sql/.
COPY --from=build /src/sql/ /usr/share/kvmgate/sql/
COPY --from=build /src/static/ /usr/share/kvmgate/static/
COPY --from=build /src/nginx/ /usr/share/kvmgate/nginx/
COPY --from=build /src/scripts/stack.sh /src/scripts/render-nginx.sh /usr/share/kvmgate/scripts/
COPY docker/entrypoint.sh /usr/local/bin/kvmgate-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/kvmgate-healthcheck
RUN chmod 0755 /usr/local/bin/kvmgate-entrypoint /usr/local/bin/kvmgate-healthcheck \
      /usr/share/kvmgate/scripts/stack.sh /usr/share/kvmgate/scripts/render-nginx.sh

ENV KVMGATE_BIN_DIR=/usr/local/bin \
    KVMGATE_SQL_DIR=/usr/share/kvmgate/sql \
    KVMGATE_VAR_DIR=/var/lib/kvmgate \
    KVMGATE_FCGI_LISTEN=0.0.0.0:9000 \
    KVMGATE_NGINX=off \
    KVMGATE_LOG_STDERR=1

USER kvmgate
WORKDIR /var/lib/kvmgate
VOLUME /var/lib/kvmgate
EXPOSE 9000

# Healthy when the FastCGI workers answer GET /healthz with 200, which they do only
# when the database and the capture worker both answer them.
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/kvmgate-healthcheck"]

ENTRYPOINT ["/usr/local/bin/kvmgate-entrypoint"]
CMD ["run"]
