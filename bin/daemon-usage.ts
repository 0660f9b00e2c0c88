// accel daemon's usage, apart from the daemon's code so that `accel help` and completion need not load it.
export const DAEMON_USAGE = `Usage: accel daemon [ --port PORT ] [ --config FILE ] [ --seed N ] [ --state-dir DIR ]
                    [ --simulate ] [ --grpc ADDR ] [ --busy-poll USEC ]
  --port PORT      netlink port id to bind (default: $ACCEL_NL_PORT or 0x41434345)
  --config FILE    YAML configuration (default: two devices; see docs/daemon.md)
  --seed N         seed for telemetry noise and simulated errors
  --state-dir DIR  keep lifetime RAS counters, retired rows and the RAS log across restarts
  --simulate       inject background errors at demo rates (unless the config sets its own)
  --grpc ADDR      also serve RAS over gRPC on ADDR (host:port, e.g. 127.0.0.1:50051; docs/formats/grpc.md)
  --busy-poll USEC after answering, keep reading the socket up to USEC µs (0-1000; default 0, off)
                   before sleeping: lower latency for clients in a request loop, for that CPU time
`;
