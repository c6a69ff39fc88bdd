import { readFileSync } from "node:fs";
import { native } from "../native.js";

/** The variable a token may come in; children must never inherit it. */
const TOKEN_VARIABLE = "ENVD_ACCESS_TOKEN";

/** Values given to --access-token (or -access-token) on the command line, in both spellings. */
function tokenArguments(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?access-token(?:=(.*))?$/s.exec(argv[i]!);
    if (!m) continue;
    const value = m[1] ?? argv[++i];
    if (value) out.push(value);
  }
  return out;
}

function procText(file: string): string {
  try {
    return readFileSync(file, "latin1");
  } catch {
    return "";
  }
}

/**
 * Hides the access token from other processes: /proc/<pid>/cmdline is readable by every user,
 * so a token given with --access-token would let any local user act as root through the API.
 * The token's bytes in the argument and environment areas are overwritten with '*', and the
 * variable leaves the daemon's environment so nothing it starts inherits it. Returns what could
 * not be hidden (the caller logs it); empty when all went well.
 */
export function hideAccessToken(argv: string[], env: NodeJS.ProcessEnv, token: string | undefined): string[] {
  const secrets = new Set([...tokenArguments(argv), env[TOKEN_VARIABLE] ?? "", token ?? ""].filter((s) => s !== ""));
  delete env[TOKEN_VARIABLE];
  if (secrets.size === 0) return [];
  const problems: string[] = [];
  for (const secret of secrets) {
    try {
      native().scrubProcessStrings(secret);
    } catch (err) {
      problems.push(`cannot overwrite the access token in the process's memory: ${(err as Error).message}`);
      break;
    }
  }
  const cmdline = procText("/proc/self/cmdline");
  const environ = procText("/proc/self/environ");
  for (const secret of secrets) {
    const bytes = Buffer.from(secret, "utf8").toString("latin1");
    if (cmdline.includes(bytes)) problems.push("the access token is still visible in /proc/<pid>/cmdline; give it with --access-token-file instead");
    if (environ.includes(bytes)) problems.push("the access token is still visible in /proc/<pid>/environ");
  }
  return [...new Set(problems)];
}
