// The generated messages, enums and service descriptors of the extension services.
export * from "../gen/envdts/v1/process_ext_pb.js";
export * from "../gen/envdts/v1/filesystem_ext_pb.js";
export * from "../gen/envdts/v1/proxy_pb.js";
export * from "../gen/envdts/v1/system_pb.js";
