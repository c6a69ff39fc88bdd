import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO_ROOT = fileURLToPath(new URL("../../proto", import.meta.url));

/** A @grpc/grpc-js client for envdts.v1.System over cleartext HTTP/2 (h2c). */
export function grpcSystemClient(port: number): any {
  const def = protoLoader.loadSync("envdts/v1/system.proto", {
    includeDirs: [PROTO_ROOT],
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return new pkg.envdts.v1.System(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** Calls a unary method; resolves with the response, or rejects with the grpc-js ServiceError. */
export function grpcUnary(client: any, method: string, request: unknown, metadata = new grpc.Metadata()): Promise<any> {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)));
  });
}

/** What a server stream delivered, and how it ended. */
export interface GrpcStreamResult {
  messages: any[];
  status: grpc.StatusObject;
}

/**
 * Opens a server stream and collects messages until it ends, or until `stop` returns
 * true (then the call is cancelled and the status is CANCELLED).
 */
export function grpcServerStream(
  client: any,
  method: string,
  request: unknown,
  metadata = new grpc.Metadata(),
  stop: (messages: any[]) => boolean = () => false,
  onMessage?: (m: any, call: grpc.ClientReadableStream<unknown>) => void,
): Promise<GrpcStreamResult> {
  return new Promise((resolve) => {
    const messages: any[] = [];
    const call: grpc.ClientReadableStream<unknown> = client[method](request, metadata);
    call.on("data", (m: unknown) => {
      messages.push(m);
      onMessage?.(m, call);
      if (stop(messages)) call.cancel();
    });
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => resolve({ messages, status }));
  });
}

export { grpc };
