import type { Capability } from "../server.js";
import { openApiDocument } from "./openapi-document.js";

/** GET /openapi.json: the document, serialised once. */
export function openApiCapability(): Capability {
  const body = JSON.stringify(openApiDocument, null, 2) + "\n";
  return {
    rest: {
      "GET /openapi.json": (_req, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "cache-control": "no-cache" });
        res.end(body);
      },
    },
  };
}
