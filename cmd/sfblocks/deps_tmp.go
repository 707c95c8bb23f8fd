package main
import (
 _ "github.com/nats-io/nats.go"
 _ "github.com/nats-io/nats.go/micro"
 _ "github.com/nats-io/nats.go/jetstream"
 _ "github.com/nats-io/nats-server/v2/server"
 _ "golang.org/x/oauth2"
 _ "github.com/rs/zerolog"
 _ "github.com/sony/gobreaker/v2"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "golang.org/x/sync/singleflight"
 _ "golang.org/x/time/rate"
 _ "github.com/simpleforce/simpleforce"
)
func main(){}
