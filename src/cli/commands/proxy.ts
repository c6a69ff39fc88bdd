import type { ProxySpec, ProxyTypeName } from "../../client/index.js";
import { client, parse, UsageError, type CliContext } from "../context.js";
import { formatBytes, json, table } from "../format.js";

export const proxyHelp = `Usage: envd proxy ls
       envd proxy add [--id ID] [--type tcp|udp|http|https|websocket] LOCAL REMOTE
       envd proxy rm ID...

Managed proxies: they live in the daemon until removed.
  LOCAL                host:port to listen on (port 0 picks a free one)
  REMOTE               host:port to forward to (http types: also a URL)
  --bearer TOKEN       http types: clients must send this bearer token
  --basic USER:PASS    http types: clients must send these credentials
  --cert FILE, --key FILE   https: the certificate and key
`;

const TYPES: ProxyTypeName[] = ["tcp", "udp", "http", "https", "websocket"];

/** envd proxy ls|add|rm. */
export async function proxy(args: string[], ctx: CliContext): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parse(rest, { id: { type: "string" }, type: { type: "string" }, bearer: { type: "string" }, basic: { type: "string" }, cert: { type: "string" }, key: { type: "string" } });
  const envd = client(values, ctx.env);
  switch (verb) {
    case "ls":
    case "list": {
      const list = await envd.proxies.list();
      if (values.json) {
        ctx.out(json(list.map(({ raw: _raw, ...p }) => p)) + "\n");
        return 0;
      }
      const rows = list.map((p) => [p.id, p.type, p.boundAddress, p.remote, p.origin, `${p.stats.activeConnections}/${p.stats.totalConnections}`, String(p.stats.requests), String(p.stats.errors), `${formatBytes(p.stats.bytesFromClients)}/${formatBytes(p.stats.bytesToClients)}`]);
      ctx.out(table(["ID", "TYPE", "LISTEN", "REMOTE", "ORIGIN", "CONNS", "REQUESTS", "ERRORS", "IN/OUT"], rows));
      return 0;
    }
    case "add": {
      if (positionals.length !== 2) throw new UsageError("give LOCAL and REMOTE");
      const type = (values.type ?? "tcp") as ProxyTypeName;
      if (!TYPES.includes(type)) throw new UsageError(`--type: '${values.type}' is not one of ${TYPES.join(", ")}`);
      const spec: ProxySpec = { id: values.id, type, local: positionals[0]!, remote: positionals[1]! };
      const [username, ...pw] = (values.basic ?? "").split(":");
      spec.options = {
        auth: values.bearer ? { method: { case: "bearerToken", value: values.bearer } } : values.basic ? { method: { case: "basic", value: { username, password: pw.join(":") } } } : undefined,
        tls: values.cert || values.key ? { certFile: values.cert ?? "", keyFile: values.key ?? "" } : undefined,
      };
      const p = await envd.proxies.create(spec);
      ctx.out(values.json ? json({ id: p.id, type: p.type, boundAddress: p.boundAddress, remote: p.remote }) + "\n" : `${p.id} ${p.boundAddress} -> ${p.remote}\n`);
      return 0;
    }
    case "rm":
    case "delete": {
      if (positionals.length === 0) throw new UsageError("give the ID of the proxy to remove");
      for (const id of positionals) await envd.proxies.delete(id);
      return 0;
    }
    default:
      throw new UsageError(verb ? `'${verb}' is not ls, add or rm` : "ls, add or rm?");
  }
}
