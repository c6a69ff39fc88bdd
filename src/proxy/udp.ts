import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { isIP } from "node:net";
import { formatHostPort } from "./address.js";
import { listenError } from "./errors.js";
import type { ListenerContext, ProxyListener } from "./listener.js";

/** Client sessions one UDP proxy keeps at most; datagrams from further clients are dropped and counted. */
const MAX_SESSIONS = 4096;
/** Datagrams held per session while its upstream socket is still connecting. */
const MAX_PENDING = 64;

interface Session {
  upstream: UdpSocket;
  connected: boolean;
  pending: Buffer[];
  lastActive: number;
}

function family(host: string): "udp4" | "udp6" {
  return isIP(host) === 6 ? "udp6" : "udp4";
}

/**
 * A UDP relay: each client address gets its own connected upstream socket, so replies find
 * their way back; a session ends after udpSessionTimeoutMs without datagrams either way.
 */
export async function startUdpProxy({ spec, counters, log }: ListenerContext): Promise<ProxyListener> {
  const t = spec.tuning;
  const bufferOpts = { recvBufferSize: t.bufferSize, sendBufferSize: t.bufferSize };
  const local = createSocket({ type: family(spec.local.host), ...bufferOpts });
  const sessions = new Map<string, Session>();

  const end = (key: string) => {
    const s = sessions.get(key);
    if (!s) return;
    sessions.delete(key);
    counters.sessions = sessions.size;
    try {
      s.upstream.close();
    } catch {
      /* already closed */
    }
  };

  const open = (key: string, client: RemoteInfo): Session => {
    const upstream = createSocket({ type: family(spec.remote.host), ...bufferOpts });
    const session: Session = { upstream, connected: false, pending: [], lastActive: Date.now() };
    sessions.set(key, session);
    counters.total++;
    counters.sessions = sessions.size;
    upstream.on("error", (err) => {
      counters.errors++;
      log.debug({ proxy: spec.id, client: key, err: err.message }, "udp proxy session failed");
      end(key);
    });
    upstream.on("message", (reply) => {
      session.lastActive = Date.now();
      local.send(reply, client.port, client.address, (err) => {
        if (err) counters.errors++;
        else counters.datagramBytesOut += reply.length;
      });
    });
    upstream.connect(spec.remote.port, spec.remote.host, () => {
      session.connected = true;
      for (const msg of session.pending.splice(0)) upstream.send(msg);
    });
    return session;
  };

  local.on("message", (msg, rinfo) => {
    counters.datagramBytesIn += msg.length;
    const key = `${formatHostPort(rinfo.address, rinfo.port)}`;
    let session = sessions.get(key);
    if (!session) {
      if (sessions.size >= MAX_SESSIONS) {
        counters.errors++;
        return;
      }
      session = open(key, rinfo);
    }
    session.lastActive = Date.now();
    if (session.connected) session.upstream.send(msg);
    else if (session.pending.length < MAX_PENDING) session.pending.push(msg);
    else counters.errors++;
  });
  local.on("error", (err) => {
    counters.errors++;
    log.warn({ proxy: spec.id, err: err.message }, "udp proxy socket error");
  });

  const wanted = formatHostPort(spec.local.host, spec.local.port);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      local.close();
      reject(listenError(err, wanted));
    };
    local.once("error", onError);
    local.bind({ address: spec.local.host, port: spec.local.port, exclusive: true }, () => {
      local.off("error", onError);
      resolve();
    });
  });

  const sweepEvery = Math.max(50, Math.min(1000, t.udpSessionTimeoutMs / 4));
  const sweeper = setInterval(() => {
    const cutoff = Date.now() - t.udpSessionTimeoutMs;
    for (const [key, s] of sessions) if (s.lastActive <= cutoff) end(key);
  }, sweepEvery);
  sweeper.unref();

  const addr = local.address();
  return {
    boundAddress: formatHostPort(addr.address, addr.port),
    async close() {
      clearInterval(sweeper);
      for (const key of [...sessions.keys()]) end(key);
      await new Promise<void>((resolve) => local.close(() => resolve()));
    },
  };
}
