import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { DescriptorIndex } from "./descriptor-index.js";

/** gRPC status codes that reflection errors carry. */
const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;

/** What a request asks, the same in v1 and v1alpha. */
type Question = v1.ServerReflectionRequest["messageRequest"] | v1alpha.ServerReflectionRequest["messageRequest"];
type Answer = MessageInitShape<typeof v1.ServerReflectionResponseSchema>["messageResponse"];

function notFound(message: string): Answer {
  return { case: "errorResponse", value: { errorCode: NOT_FOUND, errorMessage: message } };
}

/** Answers one reflection question; `sent` holds the files already sent on this stream. */
export function answer(index: DescriptorIndex, q: Question, sent: Set<string>): Answer {
  const files = (file: ReturnType<DescriptorIndex["fileByName"]>, missing: string): Answer =>
    file ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.encodeWithDependencies(file, sent) } } : notFound(missing);
  switch (q.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.serviceNames.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(index.fileByName(q.value), `file not found: ${q.value}`);
    case "fileContainingSymbol":
      return files(index.fileBySymbol(q.value), `symbol not found: ${q.value}`);
    case "fileContainingExtension":
      return files(
        index.fileByExtension(q.value.containingType, q.value.extensionNumber),
        `extension ${q.value.extensionNumber} of ${q.value.containingType} not found`,
      );
    case "allExtensionNumbersOfType": {
      const numbers = index.extensionNumbers(q.value);
      return numbers ? { case: "allExtensionNumbersResponse", value: { baseTypeName: q.value, extensionNumber: numbers } } : notFound(`type not found: ${q.value}`);
    }
    default:
      return { case: "errorResponse", value: { errorCode: UNIMPLEMENTED, errorMessage: "the request names no known reflection query" } };
  }
}

/**
 * Registers grpc.reflection.v1 and v1alpha ServerReflection on `router`. The services are
 * read from the router when the first question arrives, after `loadAll` has registered the
 * lazy ones, so every service the server speaks is listed whatever the order of
 * registration. Bidi streaming: HTTP/2 only (h2c).
 */
export function registerReflection(router: ConnectRouter, loadAll: () => Promise<void>): void {
  let index: Promise<DescriptorIndex> | undefined;
  const getIndex = () => (index ??= loadAll().then(() => new DescriptorIndex(router.handlers.map((h) => h.service))));
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) yield { validHost: req.host, originalRequest: req, messageResponse: answer(await getIndex(), req.messageRequest, sent) };
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) {
        const messageResponse = answer(await getIndex(), req.messageRequest, sent) as MessageInitShape<typeof v1alpha.ServerReflectionResponseSchema>["messageResponse"];
        yield { validHost: req.host, originalRequest: req, messageResponse };
      }
    },
  });
}
