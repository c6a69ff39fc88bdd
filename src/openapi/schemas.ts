/** Component schemas, parameters and responses shared by the paths of the OpenAPI document. */
export const components = {
  securitySchemes: {
    AccessToken: {
      type: "apiKey",
      in: "header",
      name: "X-Access-Token",
      description: "Required on every route that does not say otherwise once a token is set (flag --access-token, or POST /init).",
    },
  },
  schemas: {
    Error: {
      type: "object",
      description: "E2B's error body; the HTTP status is repeated in `code`.",
      required: ["code", "message"],
      properties: { code: { type: "integer" }, message: { type: "string" } },
    },
    Metrics: {
      type: "object",
      required: ["ts", "cpu_count", "cpu_used_pct", "mem_total_mib", "mem_used_mib", "mem_total", "mem_used", "mem_cache", "disk_used", "disk_total"],
      properties: {
        ts: { type: "integer", description: "Unix seconds" },
        cpu_count: { type: "integer" },
        cpu_used_pct: { type: "number", description: "Busy CPU percentage since the previous call" },
        mem_total_mib: { type: "integer", deprecated: true },
        mem_used_mib: { type: "integer", deprecated: true },
        mem_total: { type: "integer" },
        mem_used: { type: "integer" },
        mem_cache: { type: "integer" },
        disk_used: { type: "integer" },
        disk_total: { type: "integer" },
      },
    },
    EnvVars: { type: "object", additionalProperties: { type: "string" } },
    InitRequest: {
      type: "object",
      properties: {
        envVars: { $ref: "#/components/schemas/EnvVars" },
        accessToken: { type: "string", description: "Sets the token; leaving it out while one is set clears it (the holder of the old token must send it)." },
        timestamp: { type: "string", format: "date-time", description: "Requests not newer than the last applied one are ignored." },
        defaultUser: { type: "string" },
        defaultWorkdir: { type: "string" },
      },
    },
    EntryInfo: {
      type: "object",
      required: ["name", "path", "type"],
      properties: {
        name: { type: "string" },
        path: { type: "string" },
        type: { type: "string", enum: ["file", "directory"] },
        metadata: { type: "object", additionalProperties: { type: "string" }, description: "user.e2b.* extended attributes, without the prefix" },
      },
    },
    ComposeRequest: {
      type: "object",
      required: ["source_paths", "destination"],
      properties: {
        source_paths: { type: "array", items: { type: "string" }, minItems: 1 },
        destination: { type: "string" },
        username: { type: "string" },
      },
    },
  },
  parameters: {
    FilePath: { name: "path", in: "query", schema: { type: "string" }, description: "Absolute, or relative to the user's home; `~` expands." },
    Username: { name: "username", in: "query", schema: { type: "string" }, description: "The user the operation acts as (default: the daemon's default user)." },
    Signature: { name: "signature", in: "query", schema: { type: "string" }, description: "`v1_<sha256>` URL signature, instead of X-Access-Token." },
    SignatureExpiration: { name: "signature_expiration", in: "query", schema: { type: "integer" }, description: "Unix seconds after which the signature is refused." },
  },
  responses: {
    Error: { description: "An error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
    Unauthorized: { description: "Missing or wrong access token", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
    NotImplemented: { description: "envd-ts has no cgroup freezer, filesystem freeze or live upgrade", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
  },
} as const;
