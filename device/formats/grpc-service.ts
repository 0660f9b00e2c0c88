// The gRPC service (format GRPC, docs/formats/grpc.md): accelnl.ras.v1.Ras from ras.proto, served
// with @grpc/grpc-js, messages (de)serialised by @bufbuild/protobuf. GetCounters reads a device's
// counters; StreamEvents replays the RAS log from a sequence number, then follows live events, with
// no gap and no duplicate between the two (the replay and the subscription happen in one tick).
// Loaded by grpc.ts only when a daemon is asked to serve gRPC.
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import type { RasEvent } from '../log';
import { readFrom } from '../log';
import type { Device } from '../model';
import type { Runtime } from '../runtime';
import {
  CountersSchema, EventSchema, type GetCountersRequest, GetCountersRequestSchema, type StreamEventsRequest,
  StreamEventsRequestSchema,
} from './gen/ras_pb';
import { countersMsg, eventMsg } from './protobuf';
import { countersOf } from './record';
import { formatSupport, supports } from './support';

/** A stream whose client reads slower than this many queued events is ended: resume it from its last seq. */
export const MAX_QUEUED = 65536;


const ser = <T>(schema: Parameters<typeof toBinary>[0]) => (m: T) => Buffer.from(toBinary(schema, m as never));
const de = <T>(schema: Parameters<typeof fromBinary>[0]) => (b: Buffer) => fromBinary(schema, b) as T;

export const RAS_SERVICE: grpc.ServiceDefinition = {
  GetCounters: {
    path: '/accelnl.ras.v1.Ras/GetCounters', requestStream: false, responseStream: false,
    requestSerialize: ser(GetCountersRequestSchema), requestDeserialize: de(GetCountersRequestSchema),
    responseSerialize: ser(CountersSchema), responseDeserialize: de(CountersSchema),
  },
  StreamEvents: {
    path: '/accelnl.ras.v1.Ras/StreamEvents', requestStream: false, responseStream: true,
    requestSerialize: ser(StreamEventsRequestSchema), requestDeserialize: de(StreamEventsRequestSchema),
    responseSerialize: ser(EventSchema), responseDeserialize: de(EventSchema),
  },
};

const status = (code: grpc.status, details: string) => Object.assign(new Error(details), { code, details });

function device(rt: Runtime, index: number): Device | grpc.ServiceError {
  const d = rt.emu.devices.get(index);
  if (!d) return status(grpc.status.NOT_FOUND, `no device ${index}`) as grpc.ServiceError;
  if (!supports(rt, d, 'grpc')) return status(grpc.status.FAILED_PRECONDITION, `${d.name} does not offer grpc`) as grpc.ServiceError;
  return d;
}

export interface GrpcService {
  /** Resolves to the endpoint (host:port, the port resolved when 0 was asked) once serving. */
  ready: Promise<string>;
  close(): void;
}

export function startGrpc(rt: Runtime, address: string): GrpcService {
  const server = new grpc.Server();
  const streams = new Set<() => void>();
  server.addService(RAS_SERVICE, {
    GetCounters(call: grpc.ServerUnaryCall<GetCountersRequest, unknown>, cb: grpc.sendUnaryData<unknown>) {
      const d = device(rt, call.request.devIndex);
      if (d instanceof Error) return cb(d);
      cb(null, countersMsg(countersOf(d, rt.emu.clock.nowNs())));
    },
    StreamEvents(call: grpc.ServerWritableStream<StreamEventsRequest, unknown>) {
      const { devIndex, fromSeq } = call.request;
      if (devIndex === undefined && fromSeq > 0n) {
        call.emit('error', status(grpc.status.INVALID_ARGUMENT, 'from_seq needs dev_index (sequence numbers are per device)'));
        return;
      }
      let only: Device | undefined;
      if (devIndex !== undefined) {
        const d = device(rt, devIndex);
        if (d instanceof Error) { call.emit('error', d); return; }
        only = d;
      }
      const last = new Map<number, bigint>();
      const send = (e: RasEvent): void => {
        if ((last.get(e.dev) ?? 0n) >= e.seq) return;
        last.set(e.dev, e.seq);
        call.write(eventMsg(e));
      };
      const md = new grpc.Metadata();
      let lost = 0n;
      let replay: RasEvent[] = [];
      if (only && fromSeq > 0n) ({ events: replay, lost } = readFrom(only.log, fromSeq));
      md.set('accel-lost', lost.toString()); // records older than the ring still holds
      call.sendMetadata(md);
      for (const e of replay) send(e);
      const listener = (d: Device, e: RasEvent): void => {
        if (only ? d !== only : !supports(rt, d, 'grpc')) return;
        if (call.writableLength > MAX_QUEUED) {
          stop();
          call.emit('error', status(grpc.status.RESOURCE_EXHAUSTED, `client too slow: resume from seq ${(last.get(d.index) ?? 0n) + 1n}`));
          return;
        }
        send(e);
      };
      const stop = (): void => {
        const i = rt.emu.onRas.indexOf(listener);
        if (i >= 0) rt.emu.onRas.splice(i, 1);
        streams.delete(stop);
      };
      rt.emu.onRas.push(listener);
      streams.add(stop);
      call.on('cancelled', stop);
      call.on('close', stop);
    },
  });
  const sup = formatSupport(rt);
  const ready = new Promise<string>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      sup.grpcEndpoint = /:\d+$/.test(address) ? address.replace(/:\d+$/, `:${port}`) : `${address}:${port}`;
      resolve(sup.grpcEndpoint);
    });
  });
  ready.catch(() => undefined); // the caller decides what a failed bind means
  return {
    ready,
    close() {
      sup.grpcEndpoint = undefined;
      for (const stop of [...streams]) stop();
      server.forceShutdown();
    },
  };
}
