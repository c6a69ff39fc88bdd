// The local limit, measured in a lean process of its own: the bench process holds the SDK,
// tsx and large buffers, and fork() from a big process is slow (page tables are copied:
// ~0.8 ms at 50 MiB RSS, ~10 ms at 250 MiB), which would flatter the daemon.
//
// Reads JSON lines on stdin: {id, argv, uid, gid, env, cwd, n, concurrent}. Runs the command n
// times (one after the other, or all at once when concurrent), reading stdout and stderr through
// pipes, and answers {id, ms: [per run], wallMs, bytes: [stdout bytes per run], codes} on stdout.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

function runOnce(job) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(job.argv[0], job.argv.slice(1), { uid: job.uid, gid: job.gid, env: job.env, cwd: job.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let bytes = 0;
    child.stdout.on("data", (d) => (bytes += d.length));
    child.stderr.resume();
    child.once("error", reject);
    child.once("close", (code) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes, code }));
  });
}

async function handle(job) {
  const t0 = process.hrtime.bigint();
  let runs;
  if (job.concurrent) runs = await Promise.all(Array.from({ length: job.n }, () => runOnce(job)));
  else {
    runs = [];
    for (let i = 0; i < job.n; i++) runs.push(await runOnce(job));
  }
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { id: job.id, wallMs, ms: runs.map((r) => r.ms), bytes: runs.map((r) => r.bytes), codes: runs.map((r) => r.code) };
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const job = JSON.parse(line);
  handle(job).then(
    (r) => process.stdout.write(JSON.stringify(r) + "\n"),
    (err) => process.stdout.write(JSON.stringify({ id: job.id, error: String(err?.message ?? err) }) + "\n"),
  );
});
process.stdout.write(JSON.stringify({ ready: true }) + "\n");
