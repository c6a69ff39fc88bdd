// gRPC server reflection over h2c, as grpcurl uses it: a raw @grpc/grpc-js bidi stream on
// grpc.reflection.v1 and v1alpha, and grpc-js-reflection-client (its own copy of the
// reflection protos) discovering a service and then calling it from the reflected descriptors.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { GrpcReflection } from "grpc-js-reflection-client";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const PROTO_ROOT = fileURLToPath(new URL("../proto", import.meta.url));
const TOKEN = "reflection-token";

type Version = "v1" | "v1alpha";

function reflectionClient(port: number, version: Version): any {
  const def = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [PROTO_ROOT], defaults: false, oneofs: true, keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return new pkg.grpc.reflection[version].ServerReflection(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** One bidi stream: sends each request after the previous answer arrived; returns the answers. */
function converse(client: any, requests: object[], metadata = new grpc.Metadata()): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const answers: any[] = [];
    const call = client.ServerReflectionInfo(metadata);
    call.on("data", (m: any) => {
      answers.push(m);
      if (answers.length < requests.length) call.write(requests[answers.length]);
      else call.end();
    });
    call.on("error", reject);
    call.on("end", () => resolve(answers));
    call.write(requests[0]);
  });
}

function files(answer: any): FileDescriptorProto[] {
  assert.equal(answer.message_response, "file_descriptor_response", JSON.stringify(answer.error_response));
  return answer.file_descriptor_response.file_descriptor_proto.map((b: Buffer) => fromBinary(FileDescriptorProtoSchema, b));
}

const auth = () => {
  const md = new grpc.Metadata();
  md.set("x-access-token", TOKEN);
  return md;
};

describe("gRPC server reflection", { timeout: 60_000 }, () => {
  let d: Daemon;
  const clients: any[] = [];
  before(async () => {
    d = await startDaemon({ args: ["--access-token", TOKEN] });
  });
  after(async () => {
    for (const c of clients) c.close();
    assert.equal(await d.stop(), 0);
  });

  for (const version of ["v1", "v1alpha"] as const) {
    it(`${version}: lists every service and serves files by symbol and by name on one stream`, async () => {
      const client = reflectionClient(d.port, version);
      clients.push(client);
      const answers = await converse(
        client,
        [
          { host: "localhost", list_services: "" },
          { file_containing_symbol: "process.Process" },
          { file_containing_symbol: "filesystem.Filesystem.Stat" },
          { file_containing_symbol: "envdts.v1.HealthCheckResponse" },
          { file_by_filename: "process.proto" },
          { file_containing_symbol: "no.such.Symbol" },
          { file_by_filename: "missing.proto" },
          { all_extension_numbers_of_type: "process.StartRequest" },
        ],
        auth(),
      );
      assert.equal(answers.length, 8);

      const listed = answers[0].list_services_response.service.map((s: { name: string }) => s.name);
      for (const name of ["process.Process", "filesystem.Filesystem", "envdts.v1.System", "envdts.v1.Proxy", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]) {
        assert.ok(listed.includes(name), `${name} in ${listed.join(", ")}`);
      }
      assert.deepEqual([...listed].sort(), listed, "sorted");
      assert.equal(answers[0].valid_host, "localhost");
      assert.equal(answers[0].original_request.list_services, "");

      const processFiles = files(answers[1]);
      assert.equal(processFiles[0]!.name, "process.proto");
      assert.equal(processFiles[0]!.package, "process");
      const svc = processFiles[0]!.service.find((s) => s.name === "Process")!;
      assert.deepEqual(
        svc.method.map((m) => m.name).sort(),
        ["CloseStdin", "Connect", "List", "SendInput", "SendSignal", "Start", "StreamInput", "Update"],
      );
      const start = svc.method.find((m) => m.name === "Start")!;
      assert.equal(start.inputType, ".process.StartRequest");
      assert.equal(start.serverStreaming, true);
      // Every import comes along the first time, so the client can build the types.
      const names = new Set(processFiles.map((f) => f.name));
      for (const f of processFiles) for (const dep of f.dependency) assert.ok(names.has(dep), `${dep} sent with ${f.name}`);

      assert.equal(files(answers[2])[0]!.name, "filesystem.proto");
      const systemFile = files(answers[3])[0]!;
      assert.equal(systemFile.name, "envdts/v1/system.proto");
      assert.ok(systemFile.messageType.some((m) => m.name === "HealthCheckResponse"));

      // Asked again on the same stream: the file itself, but no imports already sent.
      const again = files(answers[4]);
      assert.equal(again[0]!.name, "process.proto");
      assert.equal(again.length, 1);

      assert.equal(answers[5].message_response, "error_response");
      assert.equal(answers[5].error_response.error_code, grpc.status.NOT_FOUND);
      assert.match(answers[5].error_response.error_message, /no\.such\.Symbol/);
      assert.equal(answers[6].error_response.error_code, grpc.status.NOT_FOUND);
      assert.equal(answers[7].message_response, "all_extension_numbers_response");
      assert.equal(answers[7].all_extension_numbers_response.base_type_name, "process.StartRequest");
      assert.deepEqual(answers[7].all_extension_numbers_response.extension_number ?? [], []);
    });
  }

  it("needs the access token when one is set", async () => {
    const client = reflectionClient(d.port, "v1");
    clients.push(client);
    await assert.rejects(converse(client, [{ list_services: "" }]), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED);
  });

  it("an independent reflection client discovers envdts.v1.System and calls it from the reflected descriptors", async () => {
    for (const version of ["v1", "v1alpha"]) {
      const r = new GrpcReflection(`127.0.0.1:${d.port}`, grpc.credentials.createInsecure(), {}, version);
      const services = await r.listServices("", auth());
      assert.ok(services.includes("process.Process"), services.join(", "));
      const methods = await r.listMethods("envdts.v1.System", auth());
      assert.ok(methods.some((m) => m.name === "HealthCheck"));

      const descriptor = await r.getDescriptorBySymbol("envdts.v1.System", auth());
      const pkg = descriptor.getPackageObject({ keepCase: true, enums: String, longs: String, defaults: true }) as any;
      const system = new pkg.envdts.v1.System(`127.0.0.1:${d.port}`, grpc.credentials.createInsecure());
      clients.push(system);
      const health = await new Promise<any>((resolve, reject) => system.HealthCheck({}, auth(), (err: Error | null, res: any) => (err ? reject(err) : resolve(res))));
      assert.equal(health.status, "STATUS_SERVING");
    }
  });
});
