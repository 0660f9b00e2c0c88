# GRPC from docs/formats/grpc.md, live: python3-grpcio calls the daemon's Ras service, with the
# messages from ras.proto compiled by protoc --python_out (argv[1]). GetCounters {dev_index}, then
# StreamEvents {dev_index, from_seq: 1} read for `count` events (the replay of the log), with the
# accel-lost initial metadata. argv: gen-dir endpoint dev count
import sys
sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import ras_pb2  # noqa: E402
from common import emit  # noqa: E402
from pb import counters, event  # noqa: E402  (the message-to-normal-form mapping, no decoding)

endpoint, dev, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with grpc.insecure_channel(endpoint) as ch:
    get = ch.unary_unary('/accelnl.ras.v1.Ras/GetCounters', request_serializer=ras_pb2.GetCountersRequest.SerializeToString,
                         response_deserializer=ras_pb2.Counters.FromString)
    stream = ch.unary_stream('/accelnl.ras.v1.Ras/StreamEvents', request_serializer=ras_pb2.StreamEventsRequest.SerializeToString,
                             response_deserializer=ras_pb2.Event.FromString)
    c = get(ras_pb2.GetCountersRequest(dev_index=dev), timeout=10)
    call = stream(ras_pb2.StreamEventsRequest(dev_index=dev, from_seq=1), timeout=10)
    lost = dict(call.initial_metadata()).get('accel-lost')
    evs = []
    for e in call:
        evs.append(event(e))
        if len(evs) == count:
            call.cancel()
            break
    try:
        missing_dev = get(ras_pb2.GetCountersRequest(dev_index=99), timeout=10)
        status = 'OK'
    except grpc.RpcError as err:
        status = err.code().name
    emit({'counters': counters(c), 'events': evs, 'lost': lost, 'unknown_device': status})
