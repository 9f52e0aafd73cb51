#!/usr/bin/env python3
"""Inlet vs adnanh/webhook: started by bench/run (see bench/README.md).

Starts adnanh/webhook, Inlet on SQLite and Inlet on PostgreSQL, configures the
same HMAC-checked hook in each, drives them one after another with wrk (same
signed 1 KiB JSON body, fixed connections and duration), alternating the order
across rounds, then prints a table and checks that every request Inlet
acknowledged with a 2xx is stored as an event. Python 3 standard library only.
"""

import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
SYSTEMS = os.environ.get("BENCH_SYSTEMS", "webhook,http-floor,durable-floor,inlet-sqlite,inlet-postgres").split(",")
# Seconds to wait for the command-action backlog to drain after the e2e load.
DRAIN_SECONDS = int(os.environ.get("BENCH_DRAIN_SECONDS", "120"))
# Load duration of the end-to-end scenario (one run per Inlet backend, after the rounds).
E2E_SECONDS = int(os.environ.get("BENCH_E2E_SECONDS", "5"))
# Optional: a data dir to start Inlet-on-SQLite on instead of a fresh one (bench/growth).
SQLITE_DATA_DIR = os.environ.get("BENCH_SQLITE_DATA_DIR")
RESULTS_FILE = os.environ.get("BENCH_RESULTS")
# Enabled rules on another trigger for the inlet-*-rules systems.
OTHER_RULES = int(os.environ.get("BENCH_OTHER_RULES", "10000"))
# Comma list: "perf" records Inlet's CPU samples (perf record, dwarf call graphs),
# "stat" counts its CPU time, context switches and fsyncs (perf stat); both during
# the first round of BENCH_PROFILE_SYSTEM (default inlet-sqlite).
PROFILE = [p for p in os.environ.get("BENCH_PROFILE", "").split(",") if p]
PROFILE_SYSTEM = os.environ.get("BENCH_PROFILE_SYSTEM", "inlet-sqlite")
# "receiver" profiles the first receiver round; "e2e" the end-to-end scenario
# (its load and the drain of its executions).
PROFILE_SCENARIO = os.environ.get("BENCH_PROFILE_SCENARIO", "receiver")
# Seconds between rounds, after writing dirty pages out: the system that ran
# before (PostgreSQL's background writer, the disk flushing a SQLite file) should
# not be charged to the next one's latency.
PAUSE = float(os.environ.get("BENCH_PAUSE_SECONDS", "2"))

WORK = os.environ["BENCH_WORK"]
ROOT = os.environ["BENCH_ROOT"]
INLET_BIN = os.environ["BENCH_INLET_BIN"]
# Optional: a second Inlet build, benchmarked as the systems "inlet-sqlite-alt" and
# "inlet-postgres-alt" beside the first, to compare two builds in one run.
ALT_BIN = os.environ.get("BENCH_ALT_BIN")
# The floors' binary (the example http_floor): Inlet's HTTP stack with nothing, or one
# durable row, behind the webhook route.
FLOOR_BIN = os.environ.get("BENCH_FLOOR_BIN")

SECRET = secrets.token_hex(20)
# bench/growth passes the token its reused data dir already has: Inlet names a seeded
# admin token "admin-<first 8 characters of a uuid v7>", so a second token seeded
# within the same ~65 s fails to start with "already exists".
ADMIN_TOKEN = os.environ.get("BENCH_ADMIN_TOKEN") or "inlet_bench_" + secrets.token_hex(24)
TRIGGER = "github.push"
E2E_TRIGGER = "bench.e2e"

started = []  # Popen objects we own


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def fail(msg):
    log(f"FAILED: {msg}")
    sys.exit(1)


# ---------------------------------------------------------------- processes


def spawn(name, argv, env=None, cwd=None, user=None):
    out = open(os.path.join(WORK, f"{name}.log"), "ab")
    if user:
        argv = ["runuser", "-u", user, "--"] + argv
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write(f"{proc.pid}\n")
    started.append(proc)
    return proc


def stop_all():
    for proc in reversed(started):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 10
    for proc in started:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            fail(f"{what} exited with {proc.returncode}; see its log in {WORK}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    fail(f"{what} did not listen on {port} within {timeout} s")


def peak_rss_kib(pid, field="VmHWM"):
    """VmHWM: the process's peak resident set since it started (VmRSS: now)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- HTTP


def http(method, url, body=None, token=None, headers=None, timeout=30):
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---------------------------------------------------------------- the request


def make_body():
    """A GitHub-push-like JSON document of exactly 1024 bytes."""
    doc = {
        "ref": "refs/heads/main",
        "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "after": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5",
        "repository": {"id": 1296269, "full_name": "octocat/Hello-World", "private": False,
                       "html_url": "https://github.com/octocat/Hello-World"},
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "head_commit": {"id": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5",
                        "message": "Update README.md", "timestamp": "2026-11-25T12:00:00Z",
                        "author": {"name": "The Octocat", "email": "octocat@example.com"},
                        "added": [], "removed": [], "modified": ["README.md"]},
        "padding": "",
    }
    base = len(json.dumps(doc, separators=(",", ":")).encode())
    doc["padding"] = "x" * (1024 - base)
    body = json.dumps(doc, separators=(",", ":")).encode()
    assert len(body) == 1024, len(body)
    return body


BODY = make_body()
SIGNATURE = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
HEADERS = {
    "Content-Type": "application/json",
    "X-Hub-Signature-256": SIGNATURE,
    "X-GitHub-Event": "push",
    "User-Agent": "GitHub-Hookshot/bench",
}


def lua_literal(s):
    return "[==[" + s + "]==]"


def write_wrk_script():
    """wrk sends the same request on every connection; done() prints one JSON line."""
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_literal(BODY.decode())}"]
    for k, v in HEADERS.items():
        lines.append(f'wrk.headers["{k}"] = {lua_literal(v)}')
    lines.append("""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
""")
    path = os.path.join(WORK, "request.lua")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def run_wrk(url, script, seconds=None):
    seconds = seconds or SECONDS
    argv = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s",
            "--timeout", "10s", "-s", script, url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write(f"{proc.pid}\n")
    try:
        stdout, stderr = proc.communicate(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    class Out:
        pass

    out = Out()
    out.stdout, out.stderr = stdout, stderr
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            r = json.loads(line[len("WRKJSON "):])
            # wrk counts status >= 400 as "status" errors; a response is 2xx otherwise
            # (no 1xx/3xx here). Socket errors do not count as responses.
            r["ok"] = r["requests"] - r["status"]
            r["errors"] = r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
            r["rps"] = r["ok"] / (r["duration_us"] / 1e6)
            return r
    fail(f"wrk printed no result: {out.stdout} {out.stderr}")


# ---------------------------------------------------------------- systems


class Unstored:
    """A system that keeps no events, so the stored-count check skips it."""

    def pid(self):
        return self.proc.pid

    def count_events(self, trigger):
        return None


class Webhook(Unstored):
    """adnanh/webhook with an HMAC-SHA256 rule on X-Hub-Signature-256 and /bin/true."""

    name = "adnanh-webhook"

    def start(self):
        hooks = [{
            "id": "bench",
            "execute-command": "/bin/true",
            "command-working-directory": WORK,
            "http-methods": ["POST"],
            # The default answer to a failed rule is a 200; make it an error so
            # a wrong signature would show in the table.
            "trigger-rule-mismatch-http-response-code": 401,
            "trigger-rule": {"match": {
                "type": "payload-hmac-sha256", "secret": SECRET,
                "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}},
        }]
        path = os.path.join(WORK, "hooks.json")
        with open(path, "w") as f:
            json.dump(hooks, f)
        self.port = free_port()
        self.proc = spawn("webhook", ["webhook", "-hooks", path, "-ip", "127.0.0.1", "-port", str(self.port)])
        wait_port(self.port, self.proc, "webhook")
        self.url = f"http://127.0.0.1:{self.port}/hooks/bench"
        status, _ = http("POST", self.url, BODY, headers=HEADERS)
        if status != 200:
            fail(f"webhook answered {status} to a signed request")
        bad = dict(HEADERS, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
        status, _ = http("POST", self.url, BODY, headers=bad)
        if status < 400:
            fail(f"webhook answered {status} to a badly signed request")
        self.notes = []
        return self


class HttpFloor(Unstored):
    """Inlet's runtime and accept loop answering the webhook route with nothing checked:
    the requests/s this machine and wrk leave before any of the receiver's work. Durable:
    each body also stored as one SQLite row, group-committed and flushed before the answer
    (the least durable write a receiver can make)."""

    def __init__(self, durable=False):
        self.durable = durable
        self.name = "durable-floor" if durable else "http-floor"

    def start(self):
        if not FLOOR_BIN or not os.path.exists(FLOOR_BIN):
            fail(f"{self.name} needs BENCH_FLOOR_BIN, the example http_floor (bench/run builds it "
                 f"unless BENCH_SKIP_BUILD=1): {FLOOR_BIN!r}")
        self.port = free_port()
        env = dict(os.environ, INLET_LISTEN=f"127.0.0.1:{self.port}")
        if self.durable:
            env["FLOOR_DB"] = os.path.join(WORK, "durable-floor.db")
        self.proc = spawn(self.name, [FLOOR_BIN], env=env)
        wait_port(self.port, self.proc, self.name)
        self.url = f"http://127.0.0.1:{self.port}/api/v1/webhooks/wh_{'0' * 32}"
        status, _ = http("POST", self.url, BODY, headers=HEADERS)
        if status != 200:
            fail(f"{self.name} answered {status}")
        self.notes = ["one row per request, flushed; nothing checked" if self.durable
                      else "nothing checked or stored"]
        return self


class Postgres:
    def start(self):
        bins = sorted(p for p in (os.path.join("/usr/lib/postgresql", v, "bin")
                                  for v in os.listdir("/usr/lib/postgresql"))
                      if os.path.exists(os.path.join(p, "initdb"))) if os.path.isdir("/usr/lib/postgresql") else []
        bindir = bins[-1] if bins else os.path.dirname(shutil.which("initdb") or "")
        if not bindir:
            fail("no initdb found (apt-get install postgresql)")
        self.bindir = bindir
        self.dir = os.path.join(WORK, "pg")
        self.sock = os.path.join(WORK, "pgsock")
        os.makedirs(self.dir)
        os.makedirs(self.sock)
        user = None
        if os.geteuid() == 0:
            user = "postgres"
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        self.user = user
        initdb = [os.path.join(bindir, "initdb"), "-D", self.dir, "-U", "postgres", "--auth=trust",
                  "--no-instructions", "-E", "UTF8"]
        if user:
            initdb = ["runuser", "-u", user, "--"] + initdb
        r = subprocess.run(initdb, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            fail(f"initdb: {r.stderr}")
        self.port = free_port()
        # Durable defaults (fsync on, synchronous_commit on); a few more connections.
        # wal_init_zero=off: a fresh cluster creates each 16 MB WAL segment by
        # writing zeros from the committing backend (p99 40-55 ms here), where a
        # database in service renames old segments instead; durability is unchanged.
        # BENCH_POSTGRES_SETTINGS adds more ("name=value name=value"; a later
        # setting of the same name wins).
        settings = ["listen_addresses=127.0.0.1", "max_connections=100", "wal_init_zero=off"]
        settings += os.environ.get("BENCH_POSTGRES_SETTINGS", "").split()
        argv = [os.path.join(bindir, "postgres"), "-D", self.dir, "-p", str(self.port), "-k", self.sock]
        for setting in settings:
            argv += ["-c", setting]
        self.proc = spawn("postgres", argv, user=user)
        wait_port(self.port, self.proc, "postgres")
        for _ in range(100):
            if self.psql("SELECT 1", check=False) == "1":
                break
            time.sleep(0.2)
        return self

    def url(self, db):
        if db != "postgres" and self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'") != "1":
            self.psql(f"CREATE DATABASE {db}")
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, check=True, db="postgres"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                            "-XAtqc", sql], capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            fail(f"psql {sql!r}: {r.stderr}")
        return r.stdout.strip()


class Inlet:
    def __init__(self, backend, pg=None, prefilled=False, other_rules=0, alt=False):
        self.backend = backend
        self.pg = pg
        self.prefilled = prefilled
        self.other_rules = other_rules
        self.alt = alt
        self.bin = ALT_BIN if alt else INLET_BIN
        self.name = (f"inlet-{backend}" + ("-prefilled" if prefilled else "") + ("-rules" if other_rules else "")
                     + ("-alt" if alt else ""))

    def start(self):
        self.port = free_port()
        if self.prefilled:
            if not SQLITE_DATA_DIR:
                fail("inlet-sqlite-prefilled needs BENCH_SQLITE_DATA_DIR")
            self.data = SQLITE_DATA_DIR
        else:
            self.data = os.path.join(WORK, f"data-{self.name}")
            os.makedirs(self.data, exist_ok=True)
        env = dict(os.environ)
        env.update({
            "INLET_DATA_DIR": self.data,
            "INLET_LISTEN": f"127.0.0.1:{self.port}",
            "INLET_ADMIN_TOKEN": ADMIN_TOKEN,
            "INLET_PACKS_DIR": os.path.join(ROOT, "packs"),
            "INLET_LOG": os.environ.get("BENCH_INLET_LOG", "warn"),
        })
        if self.pg:
            self.db = "inlet_alt" if self.alt else "inlet_rules" if self.other_rules else "postgres"
            env["INLET_DATABASE_URL"] = self.pg.url(self.db)
        self.proc = spawn(self.name, [self.bin, "serve"], env=env, cwd=ROOT)
        wait_port(self.port, self.proc, self.name, timeout=120)
        self.api = f"http://127.0.0.1:{self.port}/api/v1"
        for _ in range(100):
            if http("GET", f"http://127.0.0.1:{self.port}/readyz")[0] == 200:
                break
            time.sleep(0.2)
        self.notes = []
        self.url = self.enable(TRIGGER)
        self.secured = self.secure(TRIGGER)
        if not self.secured:
            self.notes.append("no security settings: PATCH unavailable")
        self.sanity(self.url)
        self.e2e_url = self.setup_e2e()
        if self.other_rules:
            log(f"{self.name}: peak RSS {peak_rss_kib(self.pid())} KiB before adding rules")
            self.add_other_rules(self.other_rules)
            log(f"{self.name}: peak RSS {peak_rss_kib(self.pid())} KiB, now "
                f"{peak_rss_kib(self.pid(), 'VmRSS')} KiB after adding rules")
        return self

    def add_other_rules(self, n):
        """n enabled rules on another trigger (stripe.payment_succeeded): the benchmarked
        triggers' evaluation should not notice them."""
        from concurrent.futures import ThreadPoolExecutor
        t0 = time.time()

        def one(i):
            rule = {"ref": f"other.rule_{i}", "trigger": "stripe.payment_succeeded", "action": "bench.true",
                    "condition": f"payload.amount == {i} and payload.currency == 'eur'",
                    "parameters": {"n": f"{{{{ payload.id }}}}-{i}"}, "enabled": True}
            status, doc = self.call("POST", "/rules", rule)
            if status not in (200, 201):
                return f"{status} {doc}"
            return None

        with ThreadPoolExecutor(4) as pool:
            errors = [e for e in pool.map(one, range(n)) if e]
        if errors:
            fail(f"{self.name}: creating rules: {len(errors)} failed, first: {errors[0]}")
        self.notes.append(f"{n} enabled rules on another trigger")
        log(f"{self.name}: created {n} rules on stripe.payment_succeeded in {time.time() - t0:.0f} s")

    def pid(self):
        return self.proc.pid

    def call(self, method, path, body=None):
        status, raw = http(method, self.api + path, body, token=ADMIN_TOKEN)
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return status, doc

    def enable(self, trigger):
        status, doc = self.call("POST", f"/triggers/{trigger}/webhooks/enable")
        if status != 200:
            fail(f"{self.name}: enable {trigger}: {status} {doc}")
        return doc["data"]["webhook_url"]

    def secure(self, trigger):
        settings = {
            "verification": {"scheme": "github", "secrets": [SECRET]},
            "ip_allowlist": ["127.0.0.1/32"],
            "rate_limit": {"requests": 100_000_000, "window_seconds": 60},
        }
        status, doc = self.call("PATCH", f"/triggers/{trigger}/webhooks", settings)
        if status in (404, 405):
            return False
        if status != 200:
            fail(f"{self.name}: PATCH webhook settings of {trigger}: {status} {doc}")
        return True

    def sanity(self, url):
        status, raw = http("POST", url, BODY, headers=HEADERS)
        if status != 200:
            fail(f"{self.name}: a signed request got {status}: {raw[:300]!r}")
        if self.secured:
            bad = dict(HEADERS, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
            status, raw = http("POST", url, BODY, headers=bad)
            if status != 401:
                fail(f"{self.name}: a badly signed request got {status}, expected 401: {raw[:300]!r}")

    def setup_e2e(self):
        """A trigger with a rule whose command action runs /bin/true (rules/actions API)."""
        status, doc = self.call("POST", "/triggers", {"ref": E2E_TRIGGER, "label": "bench e2e",
                                                      "description": "benchmark: rule with a /bin/true action"})
        if status not in (200, 201, 409):
            fail(f"{self.name}: create trigger {E2E_TRIGGER}: {status} {doc}")
        action = {"ref": "bench.true", "runner": {"type": "command", "argv": ["/bin/true"]},
                  "timeout_seconds": 30, "retry": {"max_attempts": 1}}
        status, doc = self.call("POST", "/actions", action)
        if status in (404, 405):
            self.e2e_note = "rules/actions API unavailable"
            return None
        if status not in (200, 201, 409):  # 409: a reused data dir (bench/growth) has it
            fail(f"{self.name}: create action: {status} {doc}")
        rule = {"ref": "bench.on_e2e", "trigger": E2E_TRIGGER, "action": "bench.true",
                "parameters": {}, "enabled": True}
        status, doc = self.call("POST", "/rules", rule)
        if status not in (200, 201, 409):
            fail(f"{self.name}: create rule: {status} {doc}")
        url = self.enable(E2E_TRIGGER)
        self.secure(E2E_TRIGGER)
        self.e2e_note = None
        return url

    def sql(self, query):
        if self.pg:
            return self.pg.psql(query, db=self.db)
        r = subprocess.run(["sqlite3", "-cmd", ".timeout 30000", os.path.join(self.data, "inlet.db"), query],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            fail(f"sqlite3 {query!r}: {r.stderr}")
        return r.stdout.strip()

    def count_events(self, trigger):
        return int(self.sql(f"SELECT count(*) FROM events WHERE trigger_ref = '{trigger}'"))

    def settled_count(self, trigger):
        """The event count once requests still in flight when wrk stopped have been
        committed (or dropped): stable for 0.5 s, at most 15 s."""
        last = self.count_events(trigger)
        deadline = time.time() + 15
        while time.time() < deadline:
            time.sleep(0.5)
            now = self.count_events(trigger)
            if now == last:
                return now
            last = now
        return last

    def count_accepted_log(self, trigger):
        return int(self.sql(f"SELECT count(*) FROM request_log WHERE trigger_ref = '{trigger}' "
                            "AND outcome = 'accepted'"))


# ---------------------------------------------------------------- rounds


def check_stored(system, before, after, r):
    """Every 2xx must be an event. wrk stops at the deadline with up to one request
    in flight per connection; those may have been stored without wrk counting the
    answer, so stored - acknowledged must lie in [0, connections]."""
    stored = after - before
    extra = stored - r["ok"]
    ok = 0 <= extra <= CONNECTIONS
    r["stored"] = stored
    r["check"] = "ok" if ok else "FAIL"
    if not ok:
        log(f"{system.name}: {r['ok']} acknowledged but {stored} stored")
    return ok


def count_commands_start():
    """Counts every exec of /bin/true on the machine, per 250 ms (adnanh/webhook
    answers before it runs its hook: this is how many hooks it actually ran)."""
    if not shutil.which("perf"):
        return None
    out = os.path.join(WORK, "commands.txt")
    argv = ["perf", "stat", "-x,", "-I", "250", "-a", "-e", "sched:sched_process_exec",
            "--filter", 'filename == "/bin/true"', "-o", out]
    return spawn("count-commands", argv), out


def read_command_counts(out):
    """[(seconds since the counter started, execs in that interval)]"""
    counts = []
    try:
        with open(out) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) > 3 and fields[3] == "sched:sched_process_exec" and fields[1].isdigit():
                    counts.append((float(fields[0]), int(fields[1])))
    except FileNotFoundError:
        pass
    return counts


def count_commands_stop(counter, load_seconds, requests):
    """Waits until the hooks of the answered requests have run (or 2 s pass with
    none); returns (runs/s during the load, total runs, seconds from the load's
    start to the last run)."""
    if not counter:
        return None
    proc, out = counter
    deadline = time.time() + DRAIN_SECONDS
    last_total, last_change = -1, time.time()
    while time.time() < deadline:
        time.sleep(0.5)
        total = sum(n for _, n in read_command_counts(out))
        if total != last_total:
            last_total, last_change = total, time.time()
        elif total >= requests or time.time() - last_change > 2:
            break
    if proc.poll() is not None:
        log(f"counting /bin/true runs failed (perf exited with {proc.returncode}); see count-commands.log")
        return None
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    counts = read_command_counts(out)
    during = sum(n for t, n in counts if t <= load_seconds + 0.25)
    total = sum(n for _, n in counts)
    last = max((t for t, n in counts if n), default=0.0)
    return during / load_seconds, total, last


def profile_start(pid):
    """perf record / perf stat attached to pid; returns [(process, output file)]."""
    procs = []
    if "perf" in PROFILE:
        out = os.path.join(WORK, "perf.data")
        argv = ["perf", "record", "-F", "250", "-e", "cpu-clock", "--call-graph", "dwarf,16384",
                "-p", str(pid), "-o", out]
        procs.append((spawn("perf", argv), out))
    if "stat" in PROFILE:
        out = os.path.join(WORK, "perf-stat.txt")
        argv = ["perf", "stat", "-e", "task-clock,context-switches,cpu-migrations,"
                "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,syscalls:sys_enter_pwrite64,"
                "syscalls:sys_enter_futex,syscalls:sys_enter_clock_nanosleep,syscalls:sys_enter_nanosleep", "-p", str(pid), "-o", out]
        procs.append((spawn("perf-stat", argv), out))
    return procs


def profile_stop(procs, requests):
    for proc, out in procs:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        log(f"profile: {out}")
        if out.endswith(".txt"):
            with open(out) as f:
                text = f.read()
            print(text, file=sys.stderr)
            log(f"profile: {requests} requests answered during the window")


def main():
    log(f"{ROUNDS} rounds x {SECONDS} s, {CONNECTIONS} connections, {THREADS} wrk threads, "
        f"body {len(BODY)} bytes; work dir {WORK}")
    script = write_wrk_script()
    systems = []
    pg = None
    for name in SYSTEMS:
        if name == "webhook":
            systems.append(Webhook().start())
        elif name in ("http-floor", "durable-floor"):
            systems.append(HttpFloor(durable=name == "durable-floor").start())
        elif name == "inlet-sqlite":
            systems.append(Inlet("sqlite").start())
        elif name == "inlet-sqlite-prefilled":
            systems.append(Inlet("sqlite", prefilled=True).start())
        elif name == "inlet-sqlite-rules":
            systems.append(Inlet("sqlite", other_rules=OTHER_RULES).start())
        elif name == "inlet-postgres-rules":
            pg = pg or Postgres().start()
            systems.append(Inlet("postgres", pg, other_rules=OTHER_RULES).start())
        elif name in ("inlet-postgres", "inlet-postgres-alt"):
            pg = pg or Postgres().start()
            systems.append(Inlet("postgres", pg, alt=name.endswith("-alt")).start())
        elif name == "inlet-sqlite-alt":
            systems.append(Inlet("sqlite", alt=True).start())
        else:
            fail(f"unknown system {name}")
        if systems[-1].name.endswith("-alt") and not ALT_BIN:
            fail(f"{name} needs BENCH_ALT_BIN")
    log("started: " + ", ".join(f"{s.name} (pid {s.pid()})" for s in systems))

    # Scenario 1: the receiver. Systems alternate; each round rotates the order.
    results = {s.name: [] for s in systems}
    all_ok = True
    baseline = {s.name: (s.count_events(TRIGGER), s.count_accepted_log(TRIGGER))
                for s in systems if isinstance(s, Inlet)}
    for rnd in range(ROUNDS):
        k = rnd % len(systems)
        order = systems[k:] + systems[:k]
        for s in order:
            os.sync()
            time.sleep(PAUSE)
            before = s.count_events(TRIGGER)
            prof = profile_start(s.pid()) if profiled(s, "receiver") and rnd == 0 else []
            counter = count_commands_start() if isinstance(s, Webhook) else None
            r = run_wrk(s.url, script)
            commands = count_commands_stop(counter, r["duration_us"] / 1e6, r["ok"])
            if commands is not None:
                r["commands_per_s"], r["commands"], r["commands_until_s"] = commands
                r["commands_overall_per_s"] = r["commands"] / max(r["commands_until_s"], r["duration_us"] / 1e6)
            if prof:
                profile_stop(prof, r["requests"])
            if before is not None:
                all_ok &= check_stored(s, before, s.settled_count(TRIGGER), r)
            results[s.name].append(r)
            log(f"round {rnd + 1}/{ROUNDS} {s.name:15} {r['rps']:9.0f} req/s  p50 {r['p50_us'] / 1000:6.2f} ms"
                f"  p99 {r['p99_us'] / 1000:6.2f} ms  errors {r['errors']}"
                + (f"  stored {r['stored']} ({r['check']})" if "stored" in r else ""))

    # Whole-run cross-check: the new events equal the new "accepted" request-log rows.
    for s in systems:
        if isinstance(s, Inlet):
            events = s.count_events(TRIGGER) - baseline[s.name][0]
            accepted = s.count_accepted_log(TRIGGER) - baseline[s.name][1]
            if events != accepted:
                log(f"{s.name}: {events} new events but {accepted} new accepted log rows")
                all_ok = False

    # Scenario 2: end to end with a rule whose command action runs /bin/true.
    e2e = {}
    for s in systems:
        if isinstance(s, Inlet) and s.e2e_url and os.environ.get("BENCH_E2E", "1") != "0":
            e2e[s.name] = run_e2e(s, script)
            all_ok &= e2e[s.name]["check"] == "ok"

    rss = {s.name: peak_rss_kib(s.pid()) for s in systems}
    for s in systems:
        log(f"{s.name}: peak RSS {rss[s.name]} KiB, RSS now {peak_rss_kib(s.pid(), 'VmRSS')} KiB")
    table = render(systems, results, rss, e2e)
    print(table)
    if RESULTS_FILE:
        with open(RESULTS_FILE, "w") as f:
            json.dump({"seconds": SECONDS, "rounds": ROUNDS, "connections": CONNECTIONS, "results": results,
                       "rss_kib": rss, "e2e": e2e, "table": table}, f, indent=1)
    stop_all()
    if not all_ok:
        fail("stored events do not match acknowledged requests (see above)")
    log("check passed: every acknowledged request is stored")


def profiled(system, scenario):
    return PROFILE and PROFILE_SCENARIO == scenario and system.name == PROFILE_SYSTEM


def run_e2e(s, script):
    # The receiver rounds leave events the engine has not evaluated yet (every
    # event is evaluated and marked processed, with or without rules). Measure
    # how fast that backlog drains, and start the end-to-end load on an idle engine.
    backlog = int(s.sql("SELECT count(*) FROM events WHERE NOT processed"))
    t0 = time.time()
    left = backlog
    while left and time.time() < t0 + DRAIN_SECONDS:
        time.sleep(1)
        left = int(s.sql("SELECT count(*) FROM events WHERE NOT processed"))
    took = time.time() - t0
    log(f"e2e {s.name}: evaluation backlog {backlog} events, {left} left after {took:.0f} s")
    before = s.count_events(E2E_TRIGGER)
    # Only this load's executions and evaluations count: a reused data dir
    # (bench/growth) keeps those of earlier runs. Same machine, same clock.
    since = f"created_at >= {int(time.time() * 1_000_000)}"
    prof = profile_start(s.pid()) if profiled(s, "e2e") else []
    r = run_wrk(s.e2e_url, script, E2E_SECONDS)
    after = s.settled_count(E2E_TRIGGER)
    check_stored(s, before, after, r)
    deadline = time.time() + DRAIN_SECONDS
    while time.time() < deadline:
        pending = int(s.sql("SELECT count(*) FROM executions WHERE status IN ('queued','running','retrying')"))
        if pending == 0:
            break
        time.sleep(1)
    if prof:
        profile_stop(prof, r["requests"])
    done = s.sql("SELECT count(*), min(created_at), max(finished_at) FROM executions "
                 f"WHERE status = 'succeeded' AND rule_ref = 'bench.on_e2e' AND {since}").split("|")
    succeeded = int(done[0])
    first, last = (int(done[1]), int(done[2])) if succeeded else (0, 1)
    total = int(s.sql(f"SELECT count(*) FROM executions WHERE rule_ref = 'bench.on_e2e' AND {since}"))
    ev = s.sql("SELECT count(*), min(created_at), max(created_at) FROM rule_evaluations "
               f"WHERE rule_ref = 'bench.on_e2e' AND {since}").split("|")
    r["evaluations"] = int(ev[0])
    r["eval_per_s"] = int(ev[0]) / max(1e-6, (int(ev[2]) - int(ev[1])) / 1e6) if int(ev[0]) > 1 else 0.0
    r["executions"] = total
    r["succeeded"] = succeeded
    r["exec_per_s"] = succeeded / max(1e-6, (last - first) / 1e6)
    r["drained"] = pending == 0
    r["backlog"] = backlog
    r["backlog_left"] = left
    r["backlog_per_s"] = (backlog - left) / max(took, 1e-6)
    r["pending"] = pending
    if not r["drained"]:
        log(f"{s.name} e2e: {pending} executions still pending after {DRAIN_SECONDS} s")
    elif total != r["stored"] or succeeded != total:
        log(f"{s.name} e2e: {r['stored']} events, {total} executions, {succeeded} succeeded")
        r["check"] = "FAIL"
    log(f"e2e {s.name}: {r['rps']:.0f} req/s accepted, {r['exec_per_s']:.0f} executions/s, "
        f"{succeeded}/{total} succeeded, drained={r['drained']}")
    return r


def render(systems, results, rss, e2e):
    def agg(rs):
        return {
            "rps": statistics.mean(r["rps"] for r in rs),
            "rps_min": min(r["rps"] for r in rs),
            "rps_max": max(r["rps"] for r in rs),
            "p50": statistics.median(r["p50_us"] for r in rs) / 1000,
            "p99": statistics.median(r["p99_us"] for r in rs) / 1000,
            "max": max(r["max_us"] for r in rs) / 1000,
            "errors": sum(r["errors"] for r in rs),
            "ok": sum(r["ok"] for r in rs),
            "stored": sum(r["stored"] for r in rs) if all("stored" in r for r in rs) else None,
            "commands": statistics.mean(r["commands_per_s"] for r in rs) if all("commands_per_s" in r for r in rs)
            else None,
            "commands_overall": statistics.mean(r["commands_overall_per_s"] for r in rs)
            if all("commands_per_s" in r for r in rs) else None,
            "commands_total": sum(r["commands"] for r in rs) if all("commands" in r for r in rs) else None,
        }

    # Ratios are against adnanh/webhook, or against the first system when it did not run.
    base_name = "adnanh-webhook" if "adnanh-webhook" in results else systems[0].name
    base = agg(results[base_name])["rps"] if results[base_name] else None
    lines = [
        f"Receiver: signed 1 KiB JSON POST, {CONNECTIONS} connections, {ROUNDS} rounds x {SECONDS} s per system "
        f"(alternating), {os.cpu_count()} cores shared with the load generator",
        "",
        "| system | requests/s (mean, min-max) | p50 ms | p99 ms | max ms | errors | peak RSS MiB "
        f"| 2xx / stored | vs {base_name} | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in systems:
        if not results[s.name]:
            continue
        a = agg(results[s.name])
        ratio = f"{a['rps'] / base:.2f}x" if base else "-"
        stored = f"{a['ok']} / {a['stored']}" if a["stored"] is not None else f"{a['ok']} / -"
        mib = f"{rss[s.name] / 1024:.0f}" if rss.get(s.name) else "?"
        notes = list(s.notes)
        if a["commands"] is not None:
            notes.append(f"ran /bin/true {a['commands']:,.0f} times/s during the load, "
                         f"{a['commands_total']:,} times in all ({a['commands_overall']:,.0f}/s until the last)")
        notes = "; ".join(notes)
        lines.append(f"| {s.name} | {a['rps']:,.0f} ({a['rps_min']:,.0f}-{a['rps_max']:,.0f}) | {a['p50']:.2f} "
                     f"| {a['p99']:.2f} | {a['max']:.1f} | {a['errors']} | {mib} | {stored} | {ratio} | {notes} |")
    base_commands = agg(results[base_name])["commands_overall"] if results[base_name] else None
    lines.append("")
    lines.append("End to end (rule with a command action running /bin/true):")
    lines.append("")
    if e2e:
        lines.append("| system | backlog after rounds: events, drained/s | requests/s accepted | rule evaluations/s "
                     f"| executions/s completed | succeeded executions / events | drained "
                     f"| executions/s vs {base_name} req/s | vs {base_name} /bin/true runs/s (until its last) |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for name, r in e2e.items():
            ratio = f"{r['exec_per_s'] / base:.2f}x" if base else "-"
            ratio += f" | {r['exec_per_s'] / base_commands:.2f}x" if base_commands else " | -"
            backlog = f"{r['backlog']}, {r['backlog_per_s']:,.0f}/s" + (
                f" ({r['backlog_left']} left)" if r["backlog_left"] else "")
            lines.append(f"| {name} | {backlog} | {r['rps']:,.0f} | {r['eval_per_s']:,.0f} | {r['exec_per_s']:,.0f} | {r['succeeded']} / {r['stored']} "
                         f"| {'yes' if r['drained'] else 'no (%d pending)' % r['pending']} | {ratio} |")
    else:
        skipped = os.environ.get("BENCH_E2E", "1") == "0"
        notes = {s.name: "skipped: BENCH_E2E=0" if skipped else getattr(s, "e2e_note", None)
                 for s in systems if isinstance(s, Inlet)}
        for name, note in notes.items():
            lines.append(f"- {name}: not measured ({note})")
    return "\n".join(lines)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        main()
    finally:
        stop_all()
