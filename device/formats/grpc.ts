// The gRPC service's front (format GRPC, docs/formats/grpc.md). The service itself is in
// grpc-service.ts, required only when a daemon is started with --grpc: loading it boots
// @grpc/grpc-js and @bufbuild/protobuf's descriptor registry, together about a fifth of a daemon's
// CPU time from spawn to ready, which a daemon without --grpc never needs.
import type { Runtime } from '../runtime';
import type { GrpcService } from './grpc-service';

export type { GrpcService };

export function startGrpc(rt: Runtime, address: string): GrpcService {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./grpc-service') as typeof import('./grpc-service')).startGrpc(rt, address);
}
