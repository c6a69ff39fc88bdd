import { client, parse, UsageError, type CliContext } from "../context.js";
import { json, table } from "../format.js";

export const portsHelp = `Usage: envd ports [--loopback]
       envd ports expose PORT [--address ADDR]
       envd ports unexpose PORT

TCP ports in LISTEN state in the sandbox, who listens and where each is exposed.
  --loopback           only ports reachable on loopback alone (those that need exposing)
`;

function port(raw: string | undefined): number {
  if (!raw || !/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) throw new UsageError(`'${raw ?? ""}' is not a port`);
  return Number(raw);
}

/** envd ports: listening ports; expose and unexpose. */
export async function ports(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, { loopback: { type: "boolean" }, address: { type: "string" } });
  const envd = client(values, ctx.env);
  const [verb, arg] = positionals;
  if (verb === "expose") {
    const p = await envd.proxies.expose(port(arg), { address: values.address });
    ctx.out(values.json ? json({ id: p.id, boundAddress: p.boundAddress, remote: p.remote }) + "\n" : `${p.boundAddress} -> ${p.remote}\n`);
    return 0;
  }
  if (verb === "unexpose") {
    await envd.proxies.unexpose(port(arg));
    return 0;
  }
  if (verb !== undefined) throw new UsageError(`'${verb}' is not expose or unexpose`);
  const list = await envd.proxies.listeningPorts({ loopbackOnly: values.loopback });
  if (values.json) {
    ctx.out(json(list) + "\n");
    return 0;
  }
  const rows = list.map((p) => [String(p.port), p.address, p.family, p.pid ? String(p.pid) : "-", p.processName || "-", p.loopbackOnly ? "yes" : "no", p.exposedAt || "-"]);
  ctx.out(table(["PORT", "ADDRESS", "FAMILY", "PID", "PROCESS", "LOOPBACK", "EXPOSED"], rows));
  return 0;
}
