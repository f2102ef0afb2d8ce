# syntax=docker/dockerfile:1
# tk-server: a static binary on an empty base image, running as a non-root
# user. It applies pending migrations when it starts (serve), and answers
# its own health check (tk-server healthcheck), so the image needs no shell.
#
#   docker build -t tk-server .
#   docker run -e TK_DATABASE_URL=postgres://… -p 8080:8080 tk-server
#
# PostgreSQL needs the hll and tdigest extensions: deploy/postgres builds
# such an image; compose.yaml runs both.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a change of the code reuses the download layer.
COPY go.mod go.sum ./
COPY server/go.mod server/go.sum server/
COPY cmd/tk-server/go.mod cmd/tk-server/go.sum cmd/tk-server/
RUN cd cmd/tk-server && GOWORK=off go mod download
COPY . .
ARG VERSION=dev
RUN cd cmd/tk-server && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tk-server . \
 && mkdir -p /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tk-server /usr/local/bin/tk-server
COPY --from=build --chown=65532:65532 /out/tmp /tmp
USER 65532:65532
ENV TK_ADDR=:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/usr/local/bin/tk-server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tk-server"]
CMD ["serve"]
