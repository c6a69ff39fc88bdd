// A Debian bookworm VM under QEMU with systemd as PID 1 and envd-ts installed as a sandbox
// template installs it: release/envd at /usr/bin/envd, deploy/envd.service enabled. The daemon's
// port is forwarded to 127.0.0.1. Not a test file itself.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Vm {
  /** 127.0.0.1:port, forwarded to the guest's 49983. */
  port: number;
  url: string;
  /** The serial console so far (kernel and systemd messages). */
  console(): string;
  stop(): Promise<void>;
}

export interface VmOptions {
  /** Extra files written into the guest before boot: guest path → content. */
  files?: Record<string, string>;
  memoryMiB?: number;
}

/** Where the root filesystem is cached (built once by scripts/vm/build-rootfs.sh, ~2 min). */
export function vmCacheDir(): string {
  return process.env.ENVD_VM_CACHE ?? join(ROOT, ".cache/vm");
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Builds the image (rootfs + this checkout's release and unit) and boots it; resolves when /health answers 204. */
export async function bootVm(opts: VmOptions = {}): Promise<Vm> {
  const cache = vmCacheDir();
  const rootfs = join(cache, "rootfs");
  execFileSync("bash", [join(ROOT, "scripts/vm/build-rootfs.sh"), rootfs], { stdio: "inherit" });
  const exe = join(ROOT, "release/envd");
  if (!existsSync(exe)) throw new Error("release/envd is missing: run `npm run build:release` first");
  // What a template build does: the executable where E2B's templates put envd, the unit enabled.
  copyFileSync(exe, join(rootfs, "usr/bin/envd"));
  execFileSync("chmod", ["0755", join(rootfs, "usr/bin/envd")]);
  copyFileSync(join(ROOT, "deploy/envd.service"), join(rootfs, "etc/systemd/system/envd.service"));
  const wants = join(rootfs, "etc/systemd/system/multi-user.target.wants");
  mkdirSync(wants, { recursive: true });
  rmSync(join(wants, "envd.service"), { force: true });
  symlinkSync("/etc/systemd/system/envd.service", join(wants, "envd.service"));
  const dropIns = join(rootfs, "etc/systemd/system/envd.service.d");
  rmSync(dropIns, { recursive: true, force: true });
  for (const [path, content] of Object.entries(opts.files ?? {})) {
    mkdirSync(join(rootfs, path, ".."), { recursive: true });
    writeFileSync(join(rootfs, path), content);
  }
  const work = join(cache, `run-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const image = join(work, "root.img");
  execFileSync("truncate", ["-s", "3G", image]);
  execFileSync("mkfs.ext4", ["-q", "-F", "-L", "root", "-d", rootfs, image]);
  const boot = readdirSync(join(rootfs, "boot"));
  const kernel = boot.find((f) => f.startsWith("vmlinuz-"));
  const initrd = boot.find((f) => f.startsWith("initrd.img-"));
  if (!kernel || !initrd) throw new Error(`no kernel or initrd in ${rootfs}/boot`);
  const port = await freePort();
  const consoleFile = join(work, "console.log");
  // /dev/kvm on these machines cannot run a standard guest: software emulation (tcg).
  const qemu: ChildProcess = spawn(
    "qemu-system-x86_64",
    [
      "-accel", "tcg", "-smp", "2", "-m", String(opts.memoryMiB ?? 1024),
      "-kernel", join(rootfs, "boot", kernel), "-initrd", join(rootfs, "boot", initrd),
      "-append", "root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=0",
      "-drive", `file=${image},if=virtio,format=raw`,
      "-netdev", `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:49983`, "-device", "virtio-net-pci,netdev=n0",
      "-display", "none", "-monitor", "none", "-serial", `file:${consoleFile}`, "-no-reboot",
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  let exited = false;
  qemu.once("exit", () => (exited = true));
  const vm: Vm = {
    port,
    url: `http://127.0.0.1:${port}`,
    console: () => (existsSync(consoleFile) ? readFileSync(consoleFile, "utf8") : ""),
    async stop() {
      if (!exited) {
        qemu.kill("SIGKILL");
        await new Promise((r) => qemu.once("exit", r));
      }
      rmSync(work, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 240_000;
  while (!(await healthy(vm.url))) {
    if (exited) throw new Error(`QEMU exited while booting:\n${vm.console().slice(-3000)}`);
    if (Date.now() > deadline) {
      await vm.stop();
      throw new Error(`the VM did not answer /health within 240 s:\n${vm.console().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return vm;
}

/** Whether GET /health answers 204 (QEMU accepts forwarded connections before the guest listens). */
export async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 204;
  } catch {
    return false;
  }
}
