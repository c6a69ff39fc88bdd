import { readFileSync } from "node:fs";
import { native } from "../native.js";

/** The variable a token may come in; children must never inherit it. */
const TOKEN_VARIABLE = "ENVD_ACCESS_TOKEN";
const TOKEN_FLAG = /^--?access-token(?:=(.*))?$/s;

/** Values given to --access-token (or -access-token) on the command line, in both spellings. */
function tokenArguments(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const m = TOKEN_FLAG.exec(argv[i]!);
    if (!m) continue;
    const value = m[1] ?? argv[++i];
    if (value) out.push(value);
  }
  return out;
}

/** The NUL-separated strings of a /proc file ("" when it cannot be read). */
function procStrings(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\0");
  } catch {
    return [];
  }
}

/**
 * Hides the access token from other processes: /proc/<pid>/cmdline is readable by every user,
 * so a token given with --access-token would let any local user act as root through the API.
 * The token arguments and the variable's value are overwritten with '*' where the kernel reads
 * those files from, and the variable leaves the daemon's environment so nothing it starts
 * inherits it. Returns what could not be hidden (the caller logs it); empty when all went well.
 */
export function hideAccessToken(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const fromVariable = env[TOKEN_VARIABLE];
  const secrets = new Set(tokenArguments(argv));
  delete env[TOKEN_VARIABLE];
  if (secrets.size === 0 && !fromVariable) return [];
  const problems: string[] = [];
  try {
    // The variable is scrubbed with the first call; a token only in the variable still needs one.
    for (const secret of secrets.size ? secrets : [fromVariable!]) native().scrubProcessStrings(secret, TOKEN_VARIABLE);
  } catch (err) {
    problems.push(`cannot overwrite the access token in the process's memory: ${(err as Error).message}`);
  }
  const args = procStrings("/proc/self/cmdline");
  for (const secret of secrets) {
    if (args.some((a) => a === secret || (TOKEN_FLAG.test(a) && a.endsWith(`=${secret}`)))) {
      problems.push("the access token is still visible in /proc/<pid>/cmdline; give it with --access-token-file instead");
    }
  }
  if (fromVariable && procStrings("/proc/self/environ").includes(`${TOKEN_VARIABLE}=${fromVariable}`)) {
    problems.push(`the access token is still visible in /proc/<pid>/environ (${TOKEN_VARIABLE})`);
  }
  return problems;
}
