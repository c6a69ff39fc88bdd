// The floor for cold start and idle memory: a bare Node HTTP server answering GET /health with 204.
import { createServer } from "node:http";

createServer((req, res) => {
  res.statusCode = req.url === "/health" ? 204 : 404;
  res.end();
}).listen(Number(process.argv[2]), "127.0.0.1");
