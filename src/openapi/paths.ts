/**
 * The paths of the OpenAPI document, one entry per REST route the daemon registers. Prefix
 * and WebSocket routes say so with `x-envd-prefix` / `x-envd-upgrade` (the prefix the server
 * matches), so test/openapi.test.ts can compare this file with the server's route table.
 */

const json = (schema: object) => ({ "application/json": { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = { $ref: "#/components/responses/Error" };
const unauthorized = { $ref: "#/components/responses/Unauthorized" };
const noToken: object[] = [];

function internal(summary: string): object {
  return {
    post: {
      summary,
      tags: ["internal"],
      "x-internal": true,
      description: "An orchestrator endpoint of E2B's envd; envd-ts answers 501.",
      responses: { "401": unauthorized, "501": { $ref: "#/components/responses/NotImplemented" } },
    },
  };
}

function gatewayOperation(method: string): object {
  return {
    summary: `${method} forwarded to http://127.0.0.1:{port}/{path}`,
    tags: ["gateway"],
    description:
      "The daemon's gateway to services inside the sandbox. The request (and WebSocket upgrades) go to 127.0.0.1:{port} unchanged but for X-Access-Token, which is dropped, and X-Forwarded-* headers, which are added. `/proxy/{port}` without a slash is redirected (308).",
    parameters: [
      { name: "port", in: "path", required: true, schema: { type: "integer", minimum: 1, maximum: 65535 } },
      { name: "path", in: "path", required: true, schema: { type: "string" }, description: "The rest of the path; may contain slashes." },
    ],
    responses: {
      default: { description: "Whatever the service answered" },
      "308": { description: "`/proxy/{port}` → `/proxy/{port}/`" },
      "400": error,
      "401": unauthorized,
      "502": { description: "Nothing answered on that port", content: { "text/plain": { schema: { type: "string" } } } },
      "504": { description: "The service did not answer in time", content: { "text/plain": { schema: { type: "string" } } } },
    },
  };
}

/** Every REST path of the daemon. */
export const paths = {
  "/health": {
    get: {
      summary: "Liveness: 204 while the daemon serves requests",
      tags: ["system"],
      security: noToken,
      responses: { "204": { description: "Healthy (Cache-Control: no-store)" } },
    },
  },
  "/metrics": {
    get: {
      summary: "Sandbox resource usage, as E2B's envd reports it",
      tags: ["system"],
      responses: { "200": { description: "Usage", content: json(ref("Metrics")) }, "401": unauthorized, "500": { description: "Could not read /proc" } },
    },
  },
  "/metrics/prometheus": {
    get: {
      summary: "Daemon metrics in Prometheus text format 0.0.4",
      tags: ["system"],
      description:
        "Requests and latencies per route and RPC, RPC codes, errors, bytes through the port, managed proxies, and the daemon's CPU, memory, descriptors and event-loop delay.",
      responses: { "200": { description: "Exposition", content: { "text/plain; version=0.0.4": { schema: { type: "string" } } } }, "401": unauthorized },
    },
  },
  "/envs": {
    get: {
      summary: "The default environment of new processes (daemon and /init variables)",
      tags: ["system"],
      responses: { "200": { description: "Variables", content: json(ref("EnvVars")) }, "401": unauthorized },
    },
  },
  "/init": {
    post: {
      summary: "Sets environment variables, the access token, default user and working directory",
      tags: ["system"],
      "x-internal": true,
      security: noToken,
      description: "Needs no token the first time; once one is set, only a request carrying it (in the body) may change it.",
      requestBody: { required: false, content: json(ref("InitRequest")) },
      responses: {
        "204": { description: "Applied (or ignored as stale); X-Envd-Version names the protocol version" },
        "400": { description: "Body is not valid JSON or a field has the wrong type (empty body)" },
        "401": { description: "Token change refused", content: { "text/plain": { schema: { type: "string" } } } },
        "413": error,
      },
    },
  },
  "/files": {
    get: {
      summary: "Downloads a file",
      tags: ["files"],
      security: noToken,
      description: "Authorised by X-Access-Token or a URL signature. Supports gzip (Accept-Encoding), Range, If-Modified-Since, If-None-Match and If-Range.",
      parameters: [
        { $ref: "#/components/parameters/FilePath" },
        { $ref: "#/components/parameters/Username" },
        { $ref: "#/components/parameters/Signature" },
        { $ref: "#/components/parameters/SignatureExpiration" },
      ],
      responses: {
        "200": { description: "The file", content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
        "206": { description: "The requested ranges" },
        "304": { description: "Not modified" },
        "400": error,
        "401": error,
        "404": error,
        "406": error,
        "416": { description: "Range not satisfiable" },
        "500": error,
      },
    },
    post: {
      summary: "Uploads one or more files (multipart, or the raw body to `path`)",
      tags: ["files"],
      security: noToken,
      description: "Authorised by X-Access-Token or a URL signature. Content-Encoding: gzip is accepted; X-Metadata-<key> headers become user.e2b.<key> extended attributes.",
      parameters: [
        { $ref: "#/components/parameters/FilePath" },
        { $ref: "#/components/parameters/Username" },
        { $ref: "#/components/parameters/Signature" },
        { $ref: "#/components/parameters/SignatureExpiration" },
      ],
      requestBody: {
        required: true,
        content: {
          "multipart/form-data": { schema: { type: "object", properties: { file: { type: "array", items: { type: "string", format: "binary" } } } } },
          "application/octet-stream": { schema: { type: "string", format: "binary" } },
        },
      },
      responses: {
        "200": { description: "What was written", content: json({ type: "array", items: ref("EntryInfo") }) },
        "400": error,
        "401": error,
        "413": error,
        "500": error,
        "507": error,
      },
    },
  },
  "/files/compose": {
    post: {
      summary: "Concatenates files into one, deleting the sources",
      tags: ["files"],
      requestBody: { required: true, content: json(ref("ComposeRequest")) },
      responses: { "200": { description: "The composed file", content: json(ref("EntryInfo")) }, "400": error, "401": error, "404": error, "500": error, "507": error },
    },
  },
  "/openapi.json": {
    get: {
      summary: "This document",
      tags: ["system"],
      responses: { "200": { description: "OpenAPI 3.1", content: json({ type: "object" }) }, "401": unauthorized },
    },
  },
  "/terminal": {
    get: {
      summary: "The web terminal page (xterm.js): a login shell in the sandbox",
      tags: ["terminal"],
      description:
        "Opens a new shell, or attaches to the PTY process given by `pid`. A browser cannot send X-Access-Token: pass the token once as `access_token`; the answer is a redirect that moves it into an HttpOnly, SameSite=Strict cookie.",
      parameters: [
        { name: "access_token", in: "query", schema: { type: "string" }, description: "The daemon's access token (for browsers)" },
        { name: "pid", in: "query", schema: { type: "integer" }, description: "Attach to this PTY process instead of starting a shell" },
        { name: "offset", in: "query", schema: { type: "integer", minimum: 0 }, description: "Replay the output from this byte offset (default 0)" },
        { name: "user", in: "query", schema: { type: "string" }, description: "Run the new shell as this user (default: the daemon's default user)" },
      ],
      responses: {
        "200": { description: "The page", content: { "text/html": { schema: { type: "string" } } } },
        "303": { description: "Token moved from the query into a cookie" },
        "401": unauthorized,
      },
    },
  },
  "/terminal/terminal.js": {
    get: {
      summary: "The page's script: xterm.js, its fit add-on and the client, bundled at build time",
      tags: ["terminal"],
      security: noToken,
      responses: { "200": { description: "JavaScript", content: { "text/javascript": { schema: { type: "string" } } } } },
    },
  },
  "/terminal/terminal.css": {
    get: {
      summary: "The page's stylesheet",
      tags: ["terminal"],
      security: noToken,
      responses: { "200": { description: "CSS", content: { "text/css": { schema: { type: "string" } } } } },
    },
  },
  "/terminal/ws": {
    "x-envd-upgrade": "/terminal/ws",
    get: {
      summary: "WebSocket to a PTY: a new login shell, or a PTY process by pid with replay from a byte offset",
      tags: ["terminal"],
      description:
        "Binary frames carry output (in order, so a client knows its offset by counting) and input. Text frames are JSON: the daemon sends `opened` {pid, offset, dropped, user, cols, rows} first, `exit` {pid, exitCode, signal, status, outcome} at the end (then closes with 1000), and `error` {message} before closing with 1008; the client may send `resize` {cols, rows} and `input` {data}. The upgrade takes the token as X-Access-Token, `access_token` or the page's cookie, and refuses other origins (403). A client that disconnects only detaches: attach again with `pid` and the offset it reached.",
      parameters: [
        { name: "pid", in: "query", schema: { type: "integer" } },
        { name: "offset", in: "query", schema: { type: "integer", minimum: 0 } },
        { name: "cols", in: "query", schema: { type: "integer", minimum: 1 } },
        { name: "rows", in: "query", schema: { type: "integer", minimum: 1 } },
        { name: "user", in: "query", schema: { type: "string" } },
        { name: "access_token", in: "query", schema: { type: "string" } },
      ],
      responses: {
        "101": { description: "Switching to the WebSocket protocol" },
        "401": unauthorized,
        "403": error,
        "426": { description: "A plain GET: this endpoint needs Upgrade: websocket", content: json(ref("Error")) },
      },
    },
  },
  "/freeze": internal("Freezes the sandbox's cgroups before a pause"),
  "/unfreeze": internal("Thaws the cgroups"),
  "/fsfreeze": internal("Freezes the root filesystem"),
  "/fsthaw": internal("Thaws the root filesystem"),
  "/collapse": internal("Collapses the daemon's heap into huge pages"),
  "/upgrade": internal("Live self-upgrade"),
  "/proxy/{port}/{path}": {
    "x-envd-prefix": "/proxy/",
    "x-envd-upgrade": "/proxy/",
    get: gatewayOperation("GET"),
    put: gatewayOperation("PUT"),
    post: gatewayOperation("POST"),
    delete: gatewayOperation("DELETE"),
    options: gatewayOperation("OPTIONS"),
    head: gatewayOperation("HEAD"),
    patch: gatewayOperation("PATCH"),
  },
};
