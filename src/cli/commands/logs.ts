import { client, parse, selector, UsageError, type CliContext } from "../context.js";
import { json } from "../format.js";

export const logsHelp = `Usage: envd logs ID|TAG|pid:PID [-f] [--from oldest|OFFSET]

Prints a process's output the daemon still holds (stdout to stdout, stderr to stderr).
  -f, --follow         keep printing new output until the process exits for good
  --from oldest|N      start at the oldest held byte (default) or at output offset N
  --json               one JSON object per output chunk: {stream, offset, data}
`;

/** envd logs: replay held output, optionally following live output to the final exit. */
export async function logs(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parse(args, { follow: { type: "boolean", short: "f" }, from: { type: "string" } });
  if (positionals.length !== 1) throw new UsageError("give exactly one process");
  const fromRaw = values.from ?? "oldest";
  if (fromRaw !== "oldest" && !/^\d+$/.test(fromRaw)) throw new UsageError(`--from: '${fromRaw}' is not 'oldest' or an offset`);
  const from = fromRaw === "oldest" ? "oldest" : Number(fromRaw);
  const ac = new AbortController();
  const stream = await client(values, ctx.env).processes.attach(selector(positionals[0]), { from, signal: ac.signal });
  if (stream.droppedBytes! > 0 && !values.json) ctx.err(`envd logs: ${stream.droppedBytes} bytes before offset ${stream.offset} are no longer held\n`);
  // Without --follow: what was produced up to the attach, then stop.
  const end = stream.info!.output.totalBytes;
  if (!values.follow && stream.offset! >= end) return 0;
  try {
    for await (const ev of stream) {
      if (ev.type !== "output") continue;
      if (values.json) ctx.out(json({ stream: ev.stream, offset: ev.offset, data: ev.data }) + "\n");
      else if (ev.stream === "stderr") ctx.err(ev.data);
      else ctx.out(ev.data);
      if (!values.follow && ev.offset + ev.data.length >= end) {
        ac.abort();
        break;
      }
    }
  } finally {
    ac.abort();
  }
  return 0;
}
