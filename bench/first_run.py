"""First run: wall time from `make run` to the first answer of the ranking page, and to round 1.

Run: .venv/bin/python bench/first_run.py [--source DIR] [--rev REV] [--model-size SIZE]
     .venv/bin/python bench/first_run.py --smoke   # tiny model, stops at the ranking page
     (--ranking-only: the default model, but stop at the ranking page)

A newcomer's first run: `git clone` of `--source` (default: this checkout; `--rev`, default
HEAD) into a temporary directory, so nothing of this checkout's `var/` or `.cache/` (no base
model) is there, then the real `make run` in the clone, with a busy process beside it
(`--busy`, default 1: `python -c "while True: pass"`, as other work on a laptop). It is a first
run but for the venv: the clone links the source's `.venv` and `make` is told it is installed
(`-o .venv/.installed`). Then, as `annotator-1`: the time of the first 200 of the hand-written
demo's ranking page that shows a task, and the time the loop demo's ranking page first shows a
task (its round 1 generated, from the base model). If that takes longer than `--timeout`, the
last progress line of `make run` (with its ETA) is printed instead. Everything it started is
stopped, by process group, at the end.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench first run"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Just enough of one: cookies, the login form's CSRF token, GET."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:
            return 0, ""  # not listening yet

    def login(self, username: str, password: str) -> bool:
        status, body = self.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if status != 200 or not token:
            return False
        data = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
        ).encode()
        request = urllib.request.Request(
            self.base + "/accounts/login/", data=data, headers={"Referer": self.base + "/"}
        )
        try:
            with self.opener.open(request, timeout=10) as r:
                return "/accounts/login/" not in r.url
        except urllib.error.HTTPError:
            return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="the repository to clone")
    parser.add_argument("--rev", default="HEAD", help="the commit to check out in the clone")
    parser.add_argument("--busy", type=int, default=1, help="busy processes beside it")
    parser.add_argument("--model-size", choices=["default", "small", "tiny"], default="default")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds, for each wait")
    parser.add_argument(
        "--ranking-only", action="store_true", help="stop at the ranking page (not round 1)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny model; stop at the ranking page")
    args = parser.parse_args()
    if args.smoke:
        args.model_size, args.ranking_only, args.busy = "tiny", True, 0
    source = args.source.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench-first-run-"))
    checkout = tmp / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-checkout", str(source), str(checkout)], check=True
    )
    rev = subprocess.run(
        ["git", "-C", str(source), "rev-parse", args.rev],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(["git", "-C", str(checkout), "checkout", "--quiet", rev], check=True)
    (checkout / ".venv").symlink_to((source / ".venv").resolve())
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DEMO_PASSWORD": PASSWORD,
        "DEMO_MODEL_SIZE": args.model_size,
        "PYTHONPATH": str(checkout),
        "HF_HUB_OFFLINE": "1",
    }
    for name in (
        "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "VAR_DIR",
        "BASE_MODEL_CACHE", "OMP_WAIT_POLICY", "TORCH_THREADS",
    ):  # fmt: skip
        env.pop(name, None)  # the embedded default, as a fresh clone has it
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(args.busy)
    ]
    log = (tmp / "make-run.log").open("w")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
        cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    browser = Browser(f"http://127.0.0.1:{port}")
    times: dict[str, float] = {}
    try:
        deadline = started + args.timeout
        projects: list[str] = []
        while "ranking page" not in times:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"make run ended or timed out:\n{_tail(tmp)}")
            if not projects and browser.login("annotator-1", PASSWORD):
                _, home = browser.get("/")
                projects = re.findall(r'href="(/projects/\d+/annotate/)"', home)
            for path in projects:
                status, body = browser.get(path)
                if status == 200 and "data-candidate=" in body:
                    times["ranking page"] = time.monotonic() - started
                    hand = path
            time.sleep(0.2)
        print(f"first 200 of the ranking page with a task: {times['ranking page']:.1f} s")
        if not args.ranking_only:
            loop = [p for p in projects if p != hand]
            while "loop round 1" not in times:
                if proc.poll() is not None:
                    raise SystemExit(f"make run ended:\n{_tail(tmp)}")
                if time.monotonic() > deadline:
                    progress = [line for line in _tail(tmp).splitlines() if "(job " in line]
                    print(f"no round 1 after {args.timeout:.0f} s; last progress line:")
                    print(f"  {progress[-1] if progress else '(none)'}")
                    break
                status, body = browser.get(loop[0])
                if status == 200 and "data-candidate=" in body:
                    times["loop round 1"] = time.monotonic() - started
                time.sleep(1)
            if "loop round 1" in times:
                print(f"loop demo's round 1 on its ranking page: {times['loop round 1']:.1f} s")
            print("make run's terminal:\n" + _tail(tmp))
    finally:
        for p in busy:
            p.kill()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        with_log = os.environ.get("KEEP_BENCH_LOG")
        if with_log:
            shutil.copy(tmp / "make-run.log", with_log)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"| `make run` ({rev[:7]}, {args.model_size}, busy {args.busy}) | " + " | ".join(
        f"{times.get(k, float('nan')):.1f} s" for k in ("ranking page", "loop round 1")
    ) + " |")  # fmt: skip


def _tail(tmp: Path) -> str:
    path = tmp / "make-run.log"
    return path.read_text()[-3000:] if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
