import { readFileSync } from "node:fs";

/** The account every benchmarked command runs as (never root: root's login shell is slow here). */
export interface BenchUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Looks `user` up in /etc/passwd. */
export function benchUser(name = "user"): BenchUser {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name) return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || "/" };
  }
  throw new Error(`user '${name}' does not exist (npm test's scripts/test-setup.sh creates it)`);
}

/**
 * The environment the daemon gives a command (src/process/env.ts): its PATH,
 * HOME, USER, LOGNAME and E2B_SANDBOX. The local baselines use exactly this,
 * so both sides start the same shell with the same environment size.
 */
export function daemonLikeEnv(user: BenchUser, daemonPath = process.env.PATH ?? "/usr/bin:/bin"): Record<string, string> {
  return { PATH: daemonPath, HOME: user.home, USER: user.name, LOGNAME: user.name, E2B_SANDBOX: "true" };
}

/** The Authorization header the SDK sends for `{ user }`. */
export function basicAuth(user: BenchUser): string {
  return `Basic ${Buffer.from(`${user.name}:`).toString("base64")}`;
}
