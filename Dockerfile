# simtally in a container, for docker-compose.yml (Kafka, MinIO, simtally).
# Build: docker build -t simtally .   Run: docker run --rm simtally --help
FROM rust:1-bookworm AS build
# librdkafka is built from the rdkafka crate's bundled source (make, a C compiler, zlib).
RUN apt-get update && apt-get install -y --no-install-recommends cmake zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY sql sql
COPY schemas schemas
COPY benches benches
COPY examples examples
COPY testdata testdata
RUN cargo build --release --locked --bin simtally

FROM debian:bookworm-slim
# chromium prints invoices to PDF (`simtally invoice --pdf-with`, SIMTALLY_PDF_RENDERER).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates chromium \
    fonts-dejavu-core && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 simtally \
    && mkdir /invoices && chown simtally /invoices
COPY --from=build /src/target/release/simtally /usr/local/bin/simtally
ENV SIMTALLY_PDF_RENDERER=/usr/bin/chromium
USER simtally
ENTRYPOINT ["simtally"]
CMD ["--help"]
