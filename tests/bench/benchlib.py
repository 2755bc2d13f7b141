"""What the call benchmarks (tests/bench/voice.sh, video.sh) share: a
JSON-RPC client for parleyd's API socket, the two daemons' connections,
readers of /proc for CPU and memory, and the line wrapping of the
sections they write into docs/benchmarks.md.

The scripts put this directory on PYTHONPATH and set, in the
environment: PAIR (the directory holding alice/ and bob/, each with its
parleyd.sock), WORK (where results.jsonl is appended), TCK (CLK_TCK) and
OURS (the benchmark's own PIDs besides the driver: daemons, relay).
"""
import json
import os
import select
import socket
import textwrap
import time

TCK = int(os.environ.get("TCK", "100"))


class Rpc:
    """One JSON-RPC connection: requests answered in order, notifications
    queued as they come between the answers."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf, self.notes, self.next_id = b"", [], 1

    def _line(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = max(0.0, end - time.monotonic())
            if not select.select([self.s], [], [], left)[0]:
                return None
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("parleyd closed the API socket")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None, check=True):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.s.sendall((json.dumps(msg) + "\n").encode())
        while True:
            m = self._line(10)
            if m is None:
                raise TimeoutError(method + ": no answer in 10 s")
            if m.get("id") == rid:
                if "error" in m:
                    if check:
                        raise RuntimeError("%s: %s" % (method, m["error"]))
                    return None
                return m["result"]
            if "method" in m:
                self.notes.append(m)

    def event(self, timeout):
        """The next notification, or None after timeout seconds."""
        if self.notes:
            return self.notes.pop(0)
        end = time.monotonic() + timeout
        while True:
            m = self._line(max(0.0, end - time.monotonic()))
            if m is None or "method" in m:
                return m

    def wait(self, name, call_id, timeout=15, state=None):
        """The notification `name` about call_id (with params.state ==
        state, if given); the others that come first are dropped."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            e = self.event(max(0.0, end - time.monotonic()))
            if e is None:
                break
            p = e.get("params", {})
            if e["method"] == name and p.get("call_id") == call_id and \
                    (state is None or p.get("state") == state):
                return e
        raise TimeoutError("no %s %s for call %s" % (name, state or "", call_id))


def connect():
    """API connections to alice's and bob's daemons, subscribed to the
    call events."""
    a = Rpc(os.path.join(os.environ["PAIR"], "alice", "parleyd.sock"))
    b = Rpc(os.path.join(os.environ["PAIR"], "bob", "parleyd.sock"))
    ev = {"events": ["incoming-call", "call-state", "call-ended"]}
    a.call("subscribe", ev)
    b.call("subscribe", ev)
    return a, b


def hang_up(a, b, cid):
    a.call("end_call", {"call_id": cid})
    # Generous: through the relay the End may need retransmissions.
    a.wait("call-ended", cid, timeout=30)
    b.wait("call-ended", cid, timeout=30)


def emit(obj):
    """Appends one result line to WORK/results.jsonl."""
    with open(os.path.join(os.environ["WORK"], "results.jsonl"), "a") as f:
        f.write(json.dumps(obj) + "\n")


def stats(a, b, cid):
    return (a.call("call_stats", {"call_id": cid}),
            b.call("call_stats", {"call_id": cid}))


def machine():
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / TCK, sum(v) / TCK


def task_cpu(path):
    """(utime s, stime s, starttime ticks) of /proc/PID or
    /proc/PID/task/TID."""
    with open(path + "/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) / TCK, int(v[12]) / TCK, int(v[19])


def vm(pid, key):
    """A /proc/PID/status figure in kB (VmRSS, VmHWM), or None."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


class Others:
    """The share of the machine (all cores) that processes other than this
    benchmark's (OURS and this driver) used since it was made: the machine
    is shared, and a call measured while something else kept the cores
    busy says little about parleyd."""

    def __init__(self):
        self.pids = [int(p) for p in os.environ["OURS"].split()] + [os.getpid()]
        self.m0, self.o0 = machine(), self._ours()

    def _ours(self):
        s = 0.0
        for p in self.pids:
            try:
                u, st, _ = task_cpu("/proc/%d" % p)
                s += u + st
            except OSError:
                pass
        return s

    def pct(self):
        m1, o1 = machine(), self._ours()
        total = m1[1] - self.m0[1]
        busy = m1[0] - self.m0[0] - (o1 - self.o0)
        return max(0.0, 100.0 * busy / total) if total > 0 else 0.0


def wrap(lines):
    """Markdown lines wrapped at 72 columns; tables and blank lines kept,
    list items indented."""
    res = []
    for l in lines:
        if l.startswith("|") or not l:
            res.append(l)
        else:
            ind = "  " if l.startswith("- ") else ""
            res += textwrap.wrap(l, 72, subsequent_indent=ind,
                                 break_on_hyphens=False, break_long_words=False)
    return res
