# Runs INSIDE the sandbox: times the user's function (or whole program, fed a
# generated stdin) at growing input sizes.
# The host fills in PARAMS (entry, arg kind, sizes, budgets) and CODE; this file
# prints one line "CODEREMOTE-MEASURE <json>" with the points it measured.
import _thread
import builtins
import io
import json
import random
import sys
import threading
import time
import tracemalloc

PARAMS = json.loads(__PARAMS__)  # noqa: F821 (filled in by the host)
CODE = __CODE__  # noqa: F821


class _Budget(Exception):
    pass


class _Watchdog:
    """Interrupts a call that runs past its deadline (signals are not available to
    sandboxed code); one thread for the whole run, so timing a call costs nothing extra."""

    def __init__(self):
        self.deadline = None
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        while True:
            time.sleep(0.005)
            deadline = self.deadline
            if deadline is not None and time.perf_counter() > deadline:
                self.deadline = None
                _thread.interrupt_main()

    def limit(self, seconds):
        return _Limit(self, seconds)


class _Limit:
    def __init__(self, watchdog, seconds):
        self.watchdog, self.seconds = watchdog, seconds

    def __enter__(self):
        self.watchdog.deadline = time.perf_counter() + self.seconds

    def __exit__(self, kind, value, tb):
        self.watchdog.deadline = None
        if kind is KeyboardInterrupt:
            raise _Budget() from None


def _ints(rng, n, shape):
    if shape == "ascending":
        return list(range(n))
    if shape == "descending":
        return list(range(n, 0, -1))
    if shape == "odd":
        return [2 * rng.randrange(n + 1) + 1 for _ in range(n)]
    return [rng.randrange(-n, n + 1) for _ in range(n)]


def _stdin_text(items, n, rng):
    """Input in the format the host read off the program (analysis_ext.stdin), with every size n."""
    lines = []

    def value(size):
        # Other numbers: from 2 (a divisor or base of 1 would never finish) to n - 1 (an index of n items).
        return "1" if size == "cases" else str(n) if size else str(rng.randint(min(2, n), max(2, n - 1)))

    def emit(block):
        for item in block:
            kind = item["kind"]
            if kind == "ints":
                lines.append(" ".join(value(size) for size in item["sizes"]))
            elif kind == "list":
                lines.append(" ".join(value(False) for _ in range(n)))
            elif kind == "str":
                lines.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)))
            else:
                times = {"cases": 1, "n": n}.get(item["times"], item["times"])
                for _ in range(times):
                    emit(item["items"])

    emit(items)
    return "\n".join(lines) + "\n"


class _Program:
    """Runs the program as __main__ with the given stdin (also as open(0)) and its output discarded."""

    def __init__(self, code):
        self.code = compile(code, "<analyzed>", "exec")

    def __call__(self, text):
        stdin = io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8")
        real_open = builtins.open

        def open_stdin(file, *args, **kwargs):
            return stdin if file in (0, "/dev/stdin") else real_open(file, *args, **kwargs)

        def read_line(prompt=""):
            line = stdin.readline()
            if not line:
                raise EOFError("EOF when reading a line")
            return line.rstrip("\n")

        saved = sys.stdin, sys.stdout, sys.getrecursionlimit()
        sys.stdin, sys.stdout = stdin, io.StringIO()
        # The kernel's input() asks the client; the program's reads the generated input.
        names = {"__name__": "__main__", "__builtins__": builtins, "open": open_stdin, "input": read_line}
        try:
            exec(self.code, names)
        except SystemExit:
            pass
        finally:
            sys.stdin, sys.stdout = saved[0], saved[1]
            sys.setrecursionlimit(saved[2])


def _make(kind, n, m, rng, shape):
    if kind == "program":
        return (_stdin_text(PARAMS["format"], n, rng),)
    if kind == "int":
        return (n,)
    if kind == "str":
        if shape == "ascending":
            return ("".join(chr(97 + i % 26) for i in range(n)),)
        if shape == "descending":
            return ("a" * n,)
        return ("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(n)),)
    if kind == "two_lists":
        return (_ints(rng, n, shape), _ints(rng, m, shape))
    return (_ints(rng, n, shape),)


def _depth_of(fn, args):
    depth = [0, 0]

    def profile(frame, event, arg):
        if event == "call":
            depth[0] += 1
            depth[1] = max(depth[1], depth[0])
        elif event == "return":
            depth[0] -= 1

    sys.setprofile(profile)
    try:
        fn(*args)
    finally:
        sys.setprofile(None)
    return depth[1]


def _measure(fn, kind, n, m, call_limit):
    rng = random.Random(n * 7919 + m)
    worst_time = 0.0
    worst_memory = 0
    for shape in PARAMS["shapes"]:
        inputs = [_make(kind, n, m, rng, shape) for _ in range(3)]
        best = None
        calls = 0
        spent = 0.0
        while calls < 25 and (spent < PARAMS["repeat_s"] or calls < 2):
            args = inputs[calls % 3] if kind in ("int", "program") else _make(kind, n, m, rng, shape)
            with WATCHDOG.limit(call_limit):
                start = time.perf_counter()
                fn(*args)
            took = time.perf_counter() - start
            spent += took
            calls += 1
            best = took if best is None else min(best, took)
        worst_time = max(worst_time, best)
        args = _make(kind, n, m, rng, shape)
        tracemalloc.start()
        try:
            with WATCHDOG.limit(call_limit):
                fn(*args)
            worst_memory = max(worst_memory, tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    with WATCHDOG.limit(call_limit):
        depth = _depth_of(fn, _make(kind, n, m, rng, "random"))
    return {"n": n, "m": m, "time": worst_time, "memory": worst_memory, "depth": depth}


WATCHDOG = None


def main():
    global WATCHDOG
    WATCHDOG = _Watchdog()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    if PARAMS["arg"] == "program":
        fn = _Program(CODE)
    else:
        namespace = {"__name__": "__coderemote_measured__"}
        exec(compile(CODE, "<analyzed>", "exec"), namespace)
        fn = namespace[PARAMS["entry"]]
    deadline = time.perf_counter() + PARAMS["budget_s"]
    series = {}
    for name, plan in PARAMS["series"].items():
        points = []
        for n, m in plan:
            if time.perf_counter() > deadline:
                break
            try:
                point = _measure(fn, PARAMS["arg"], n, m, PARAMS["call_limit_s"])
            except (_Budget, RecursionError, MemoryError):
                break
            points.append(point)
            if point["time"] > PARAMS["call_limit_s"] / 4:
                break
        series[name] = points
    print("CODEREMOTE-MEASURE " + json.dumps(series), flush=True)


main()
