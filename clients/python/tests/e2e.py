"""End-to-end checks of envd_ts against a running daemon; test/python-client.test.ts runs this.

Environment: ENVD_URL, ENVD_TOKEN (the daemon's access token), WORK_DIR (a scratch directory
the daemon can write), OOM ("1" where a cgroup memory limit can be enforced).
Prints "ok NAME" per check; any failure raises and exits non-zero.
"""
import asyncio
import os
import sys
import types

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import envd_ts  # noqa: E402
from envd_ts import EnvdError  # noqa: E402

URL = os.environ["ENVD_URL"]
TOKEN = os.environ["ENVD_TOKEN"]
WORK = os.environ["WORK_DIR"]


def ok(name):
    print("ok", name, flush=True)


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except EnvdError as err:
        assert err.code == code, f"{code} expected, got {err}"
        return err
    raise AssertionError(f"{code} expected, the call succeeded")


def fake_sandbox(token):
    """An object shaped like the e2b Python SDK's Sandbox (the SDK is not installable here)."""
    sb = types.SimpleNamespace()
    sb.sandbox_id = "debug_sandbox_id"
    sb.envd_api_url = URL
    sb._envd_access_token = token
    sb.envd_port = 49983
    sb.connection_config = types.SimpleNamespace(headers={"User-Agent": "e2b-python-sdk/test"}, debug=True)
    return sb


def sync_checks():
    envd = envd_ts.connect(fake_sandbox(TOKEN), user="user")
    r = envd.processes.run("id", args=["-un"])
    assert r.stdout == "user\n" and r.outcome == "exited" and r.exit.exit_code == 0, r
    ok("sandbox-shaped object: URL, token and user")

    expect_error("unauthenticated", envd_ts.connect(fake_sandbox("wrong")).processes.list)
    expect_error("unavailable", envd_ts.connect("http://127.0.0.1:1").processes.list)
    ok("errors: unauthenticated, unavailable")

    if os.environ.get("OOM") == "1":
        r = envd.processes.run("perl", args=["-e", 'my $s = "x" x (256 << 20); print "done\\n"'], limits={"memory": "64M"})
        assert r.outcome == "oom_killed", r.outcome
        assert r.stdout == ""
        assert r.exit.usage.oom_kills >= 1
        ok("64M limit, 256M allocation: oom_killed")

    pattern = bytes((i * 7 + 3) & 0xFF for i in range(5120))
    path = os.path.join(WORK, "pattern")
    with open(path, "wb") as f:
        f.write(pattern)
    first = envd.processes.start("bash", args=["-c", f"for i in $(seq 1 20); do cat {path}; cat {path} >&2; done"], tag="py-replay")
    assert first.id > 0 and first.pid > 0
    live = first.wait()
    assert len(live.output) == 20 * 2 * 5120
    again = envd.processes.attach("py-replay", from_="oldest")
    assert again.offset == 0 and again.dropped_bytes == 0
    assert envd_ts.state(again.info) == "stopped"
    replay = again.wait()
    assert replay.output == live.output
    assert replay.stdout == live.stdout and replay.stderr == live.stderr
    ok("re-attach from the oldest byte returns every byte")

    s = envd.processes.start("bash", args=["-c", "echo run; exit 3"], tag="py-flaky", restart={"mode": "on-failure", "backoff_ms": 10, "max_restarts": 2})
    kinds = [ev.WhichOneof("event") for ev in s]
    assert kinds.count("started") == 3 and kinds.count("exited") == 3, kinds
    [info] = envd.processes.list(filter="finished", tag="py-flaky")
    assert info.restart_count == 2 and len(info.runs) == 3 and info.exit.exit_code == 3
    assert envd_ts.outcome(info.exit) == "exited"
    ok("restart policy and history")

    sl = envd.processes.start("sleep", args=["600"], tag="py-sleeper")
    assert [envd_ts.state(p) for p in envd.processes.list(filter="running", tag="py-sleeper")] == ["running"]
    envd.processes.signal("py-sleeper", "USR1")
    r = sl.wait()
    assert r.outcome == "signaled" and r.exit.signal_name == "SIGUSR1"
    expect_error("not_found", envd.processes.get, {"tag": "no-such"})
    expect_error("invalid_argument", envd.processes.start, "true", limits={"memory": "lots"})
    ok("signal by name; not_found; invalid_argument")

    src = os.path.join(WORK, "tree")
    os.makedirs(os.path.join(src, "sub"))
    for i in range(12):
        with open(os.path.join(src, f"f{i:02d}"), "w") as f:
            f.write(str(i))
    with open(os.path.join(src, "sub", "deep"), "w") as f:
        f.write("deep")
    c = envd.files.copy(src, os.path.join(WORK, "copy"))
    assert (c.files, c.directories) == (13, 2), c
    with open(os.path.join(WORK, "copy", "sub", "deep")) as f:
        assert f.read() == "deep"
    names = [e.name for e in envd.files.list(os.path.join(WORK, "copy"), page_size=5)]
    assert len(names) == 13 and names == sorted(names), names
    expect_error("already_exists", envd.files.copy, src, os.path.join(WORK, "copy"))
    ok("copy a tree, paged listing")

    p = envd.proxies.create("tcp", "127.0.0.1:0", URL.split("//")[1], id="py-proxy")
    host, port = p.bound_address.rsplit(":", 1)
    envd.proxies.wait_for_port(int(port), host=host, timeout_ms=10000)
    assert any(x.config.id == "py-proxy" for x in envd.proxies.list())
    envd.proxies.delete("py-proxy")
    expect_error("not_found", envd.proxies.delete, "py-proxy")
    ok("proxy create, wait for port, delete")

    gen = envd.system.watch_usage(interval_ms=100)
    samples = [next(gen) for _ in range(2)]
    gen.close()
    assert all(x.memory_total_bytes > 0 for x in samples)
    assert envd.system.info().cpu.count > 0
    ok("usage stream")
    envd.close()


async def async_checks():
    async with envd_ts.connect_async(URL, access_token=TOKEN, user="user") as envd:
        r = await envd.processes.run("sh", args=["-c", "echo a; echo b >&2; exit 5"], tag="py-async")
        assert (r.stdout, r.stderr, r.exit.exit_code, r.outcome) == ("a\n", "b\n", 5, "exited"), r
        again = await envd.processes.attach({"tag": "py-async"}, from_="oldest")
        assert (await again.wait()).output == r.output
        [p] = await envd.processes.list(tag="py-async")
        assert p.exit.exit_code == 5
        samples = []
        async for u in envd.system.watch_usage(interval_ms=100):
            samples.append(u)
            if len(samples) == 2:
                break
        assert len(samples) == 2
        try:
            await envd.processes.get({"tag": "no-such"})
            raise AssertionError("not_found expected")
        except EnvdError as err:
            assert err.code == "not_found"
    ok("asyncio client")


sync_checks()
asyncio.run(async_checks())
print("done", flush=True)
