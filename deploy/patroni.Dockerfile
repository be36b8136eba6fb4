# A Patroni member for docker-compose.ha.yml: the PostgreSQL 15 image with Debian 12's Patroni (3.0.2,
# the release scripts/ha.sh runs and tests; -t bookworm keeps apt from taking a newer one from the
# image's PGDG repository), configured by deploy/patroni.yml plus PATRONI_* variables per member.
FROM postgres:15-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends -t bookworm patroni python3-etcd \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/patroni.yml /etc/patroni/patroni.yml
ENV PATRONI_POSTGRESQL_BIN_DIR=/usr/lib/postgresql/15/bin
USER postgres
# Patroni starts, stops and promotes PostgreSQL itself: it is the container's only process.
STOPSIGNAL SIGTERM
CMD ["patroni", "/etc/patroni/patroni.yml"]
