# sfblocks: one static binary; `serve`, `sim`, `call`, ... are its commands.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/sfblocks ./cmd/sfblocks

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sfblocks /sfblocks
USER nonroot
ENTRYPOINT ["/sfblocks"]
CMD ["serve"]
